//! What to monitor and how often.

use std::fmt;
use std::time::Duration;

use crate::TopologyError;

/// Default time between two probes of a server.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
/// Default bound on one probe's statements.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default bound on connecting and logging in.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default schema of the heartbeat table.
pub const DEFAULT_HEARTBEAT_SCHEMA: &str = "lagless";

/// One server to watch. `cluster` and `server` are the caller's indexes and are copied into
/// every observation of this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoredServer {
    pub cluster: usize,
    pub server: usize,
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// The server's Unix socket, when the monitor runs on its host: probes and binlog streams
    /// connect there instead of `address` (which observations still report).
    pub socket: Option<String>,
    /// The addresses of the cluster's standbys: a writable server that replicates from one is
    /// the active side of a dual-primary pair, a primary (its link back is not replication
    /// routing or failover should follow).
    pub standbys: Vec<String>,
}

impl MonitoredServer {
    /// Where the monitor's connections go: the socket when set, else the address.
    pub fn dial(&self) -> &str {
        self.socket.as_deref().unwrap_or(&self.address)
    }

    pub fn new(
        cluster: usize,
        server: usize,
        name: impl Into<String>,
        address: impl Into<String>,
    ) -> Self {
        MonitoredServer {
            cluster,
            server,
            name: name.into(),
            address: address.into(),
            socket: None,
            standbys: Vec::new(),
        }
    }
}

/// The optional heartbeat: the monitor writes `REPLACE INTO <schema>.lagless_heartbeat (id, ts)
/// VALUES (1, NOW(6))` on each cluster's primary every interval and reads the row's age on the
/// replicas (see [`crate::heartbeat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Created if missing (when the monitor user may).
    pub schema: String,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            schema: DEFAULT_HEARTBEAT_SCHEMA.into(),
        }
    }
}

/// The monitor's configuration. [`MonitorConfig::new`] fills in the defaults.
#[derive(Clone)]
pub struct MonitorConfig {
    pub servers: Vec<MonitoredServer>,
    /// The monitor account: needs REPLICA MONITOR and BINLOG MONITOR (MariaDB; REPLICATION
    /// CLIENT on MySQL), plus CREATE, INSERT, DELETE on the heartbeat schema when the heartbeat
    /// is on.
    pub user: String,
    pub password: String,
    /// Time between the starts of two rounds of probes.
    pub interval: Duration,
    /// Bound on one probe's statements (not counting a reconnect): a server that does not
    /// answer within it is reported unreachable and its connection dropped.
    pub timeout: Duration,
    /// Bound on connecting and logging in.
    pub connect_timeout: Duration,
    pub heartbeat: Option<HeartbeatConfig>,
    /// Woken to start a round at once instead of at the next tick: a client connection to a
    /// server broke, evidence worth checking now (rounds stay at least a tenth of an interval
    /// apart).
    pub probe_now: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl MonitorConfig {
    /// A configuration with the default interval (250 ms), timeouts (1 s) and no heartbeat.
    pub fn new(
        servers: Vec<MonitoredServer>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        MonitorConfig {
            servers,
            user: user.into(),
            password: password.into(),
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            heartbeat: None,
            probe_now: None,
        }
    }

    /// Checks what [`crate::spawn`] relies on: non-zero durations, a usable heartbeat schema
    /// name.
    ///
    /// # Errors
    ///
    /// [`TopologyError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let invalid = |field, reason| Err(TopologyError::InvalidConfig { field, reason });
        if self.interval.is_zero() {
            return invalid("interval", "must be more than zero");
        }
        if self.timeout.is_zero() {
            return invalid("timeout", "must be more than zero");
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout", "must be more than zero");
        }
        if let Some(hb) = &self.heartbeat {
            if hb.schema.is_empty() || hb.schema.chars().count() > 64 {
                return invalid("heartbeat.schema", "must be 1 to 64 characters");
            }
            if hb.schema.contains('\0') || hb.schema.ends_with(' ') {
                return invalid(
                    "heartbeat.schema",
                    "must not contain NUL or end with a space",
                );
            }
        }
        Ok(())
    }
}

impl fmt::Debug for MonitorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("MonitorConfig")
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_debug_hides_password() {
        let mut c = MonitorConfig::new(
            vec![MonitoredServer::new(0, 0, "p", "127.0.0.1:1")],
            "u",
            "hunter2",
        );
        assert_eq!(c.interval, Duration::from_millis(250));
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        c.heartbeat = Some(HeartbeatConfig::default());
        c.validate().unwrap();
        c.heartbeat = Some(HeartbeatConfig {
            schema: String::new(),
        });
        assert!(matches!(
            c.validate(),
            Err(TopologyError::InvalidConfig {
                field: "heartbeat.schema",
                ..
            })
        ));
        c.heartbeat = None;
        c.timeout = Duration::ZERO;
        assert!(c.validate().is_err());
    }
}
