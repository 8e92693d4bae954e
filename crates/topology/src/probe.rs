//! One server: its persistent control connection and one probe of it.
//!
//! A probe (re)connects if needed, bounded by the connect timeout, then sends its statements,
//! all of them together bounded by the probe timeout:
//!
//! 1. the `SELECT` of variables (read_only, server_id, version, GTID positions, log_bin; on
//!    MariaDB also the semi-sync status and the heartbeat row's age),
//! 2. `SHOW ALL SLAVES STATUS` (MySQL: `SHOW REPLICA STATUS` / `SHOW SLAVE STATUS`),
//! 3. `SHOW MASTER STATUS` (MySQL 8.2+: `SHOW BINARY LOG STATUS`), skipped when log_bin is off,
//! 4. MySQL only: `SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'`,
//! 5. on the heartbeat writer only: the heartbeat `REPLACE` (and, once per connection, the
//!    `CREATE DATABASE` / `CREATE TABLE IF NOT EXISTS`).
//!
//! A statement that times out or loses the connection ends the probe: the server is reported
//! unreachable and the connection dropped. An ERR answer (e.g. a missing privilege) is noted in
//! the observation's `error` and the probe goes on. A kept connection that fails at once (not
//! by timeout), as after a server restart, is replaced by a fresh one within the same probe, so
//! a lost connection alone does not make a server look down.

use std::time::Duration;

use lagless_backend::{login, BackendError, Login, LoginOptions, QueryResult, TextResult};
use tokio::time::{timeout, timeout_at, Instant};

use crate::config::{MonitorConfig, MonitoredServer};
use crate::heartbeat;
use crate::parse::{self, parse_version, ServerVersion, Variables};
use crate::queries::{statements, Statements, VARIABLES};
use crate::types::ServerObservation;
use crate::TopologyError;

/// MySQL errors meaning "no such table" / "no such schema".
const ER_NO_SUCH_TABLE: u16 = 1146;
const ER_BAD_DB_ERROR: u16 = 1049;

/// What the monitor asks of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProbeRequest {
    /// This server may write the heartbeat (see [`heartbeat::writers`]); it still writes only if
    /// this probe, too, finds it writable and replicating from nobody.
    pub may_write_heartbeat: bool,
}

/// A logged-in connection and what was learned at login.
struct Conn {
    login: Login,
    version: ServerVersion,
    statements: Statements,
    /// The heartbeat schema and table were created (or found) on this connection.
    heartbeat_table_ready: bool,
}

/// One server's prober; owned by that server's task.
pub(crate) struct Prober {
    server: MonitoredServer,
    options: LoginOptions,
    timeout: Duration,
    heartbeat_schema: Option<String>,
    /// After the heartbeat column failed (table not there yet), when to try it again.
    heartbeat_retry_at: Option<Instant>,
    heartbeat_retry_after: Duration,
    conn: Option<Conn>,
    consecutive_failures: u32,
}

impl Prober {
    pub(crate) fn new(server: MonitoredServer, config: &MonitorConfig) -> Self {
        let options = crate::login::control_login(
            server.dial(),
            &config.user,
            &config.password,
            "lagless-monitor",
            config.connect_timeout,
            1 << 24,
        );
        Prober {
            server,
            options,
            timeout: config.timeout,
            heartbeat_schema: config.heartbeat.as_ref().map(|h| h.schema.clone()),
            heartbeat_retry_at: None,
            heartbeat_retry_after: (config.interval * 4).max(Duration::from_secs(1)),
            conn: None,
            consecutive_failures: 0,
        }
    }

    /// Probes the server once. Never takes longer than about connect timeout + probe timeout
    /// (twice that when a kept connection turned out dead and a fresh one also stalls).
    pub(crate) async fn probe(&mut self, request: ProbeRequest) -> ServerObservation {
        let mut obs = ServerObservation::blank(&self.server, Instant::now());
        let result = self.connect_and_read(&mut obs, request).await;
        obs.observed_at = Instant::now();
        obs.reachable = true;
        if let Err(e) = result {
            // The connection is already dropped when the error broke it.
            obs.reachable = !e.breaks_connection();
            tracing::debug!(server = %self.server.name, error = %e, "probe failed");
            obs.error = Some(e.to_string());
        }
        self.consecutive_failures = if obs.reachable {
            0
        } else {
            self.consecutive_failures.saturating_add(1)
        };
        obs.consecutive_failures = self.consecutive_failures;
        obs
    }

    async fn connect_and_read(
        &mut self,
        obs: &mut ServerObservation,
        request: ProbeRequest,
    ) -> Result<(), TopologyError> {
        let (mut conn, kept) = match self.conn.take() {
            Some(conn) => (conn, true),
            None => (self.connect().await?, false),
        };
        let mut result = self.read(&mut conn, obs, request).await;
        if let Err(e) = &result {
            if kept && e.breaks_connection() && !matches!(e, TopologyError::Timeout { .. }) {
                tracing::debug!(server = %self.server.name, error = %e, "kept connection lost; reconnecting");
                *obs = ServerObservation::blank(&self.server, Instant::now());
                conn = self.connect().await?;
                result = self.read(&mut conn, obs, request).await;
            }
        }
        // Keep the connection unless it is broken (then it is dropped here).
        if !result.as_ref().is_err_and(TopologyError::breaks_connection) {
            self.conn = Some(conn);
        }
        result
    }

    async fn connect(&self) -> Result<Conn, TopologyError> {
        let address = &self.server.address;
        let after = self.options.connect_timeout;
        // login() bounds itself by the same timeout; this outer bound is a second guard.
        let login = match timeout(after, login(&self.options)).await {
            Ok(Ok(login)) => login,
            Ok(Err(source)) => {
                return Err(TopologyError::Connect {
                    address: address.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(TopologyError::Connect {
                    address: address.clone(),
                    source: BackendError::Timeout {
                        stage: "login",
                        after,
                    },
                })
            }
        };
        let version = parse_version(&login.server_version);
        tracing::debug!(server = %self.server.name, version = %login.server_version, "monitor connected");
        Ok(Conn {
            statements: statements(version, self.heartbeat_schema.as_deref()),
            version,
            login,
            heartbeat_table_ready: false,
        })
    }

    /// Sends the probe's statements on the open connection and fills `obs`.
    async fn read(
        &mut self,
        conn: &mut Conn,
        obs: &mut ServerObservation,
        request: ProbeRequest,
    ) -> Result<(), TopologyError> {
        let Conn {
            login,
            version,
            statements,
            heartbeat_table_ready,
        } = conn;
        obs.flavour = Some(version.flavour);
        let mut q = Session {
            login,
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
        };

        // 1. Variables.
        let v = self.select_variables(&mut q, statements, obs).await?;
        obs.read_only = v.read_only;
        obs.server_id = v.server_id;
        obs.version = v.version;
        obs.gtid_current_pos = v.gtid_current_pos;
        obs.gtid_slave_pos = v.gtid_slave_pos;
        obs.gtid_binlog_pos = v.gtid_binlog_pos;
        obs.gtid_executed = v.gtid_executed;
        obs.semi_sync = v.semi_sync;

        // 2. Replication.
        let replication = statements.replication;
        let replication_known = match soft(obs, q.rows(replication, replication).await)? {
            Some(rows) => {
                obs.replication = parse::parse_slave_status(&rows);
                true
            }
            None => false,
        };
        let from_standby = obs.replication.as_ref().is_some_and(|r| {
            let source = format!("{}:{}", r.master_host, r.master_port);
            self.server.standbys.contains(&source)
        });
        if from_standby && obs.read_only == Some(false) {
            obs.dual_primary_link = obs.replication.take();
        }
        if obs.replication.is_some() {
            obs.heartbeat_lag = v.heartbeat_age_us.map(parse::heartbeat_lag);
        }

        // 3. Own binlog coordinates.
        if v.log_bin != Some(false) {
            let binlog = statements.binlog;
            if let Some(rows) = soft(obs, q.rows(binlog, binlog).await)? {
                obs.binlog = parse::parse_binlog_status(&rows);
            }
        }

        // 4. Semi-sync, where the SELECT could not carry it.
        if let Some(semi_sync) = statements.semi_sync {
            if let Some(rows) = soft(obs, q.rows(semi_sync, semi_sync).await)? {
                obs.semi_sync = parse::parse_semi_sync_rows(&rows);
            }
        }

        // 5. Heartbeat, on a lone primary only.
        if let Some(schema) = &self.heartbeat_schema {
            let primary =
                obs.read_only == Some(false) && replication_known && obs.replication.is_none();
            if request.may_write_heartbeat && primary {
                write_heartbeat(&mut q, heartbeat_table_ready, schema, obs).await?;
            }
        }
        Ok(())
    }

    /// The `SELECT` of variables, with the heartbeat column unless its table was missing
    /// recently. Sets `obs.rtt` to the time the (successful) statement took.
    async fn select_variables(
        &mut self,
        q: &mut Session<'_>,
        statements: &Statements,
        obs: &mut ServerObservation,
    ) -> Result<Variables, TopologyError> {
        let now = Instant::now();
        let with_heartbeat =
            self.heartbeat_schema.is_some() && self.heartbeat_retry_at.is_none_or(|t| now >= t);
        let sql = if with_heartbeat {
            &statements.variables
        } else {
            &statements.variables_without_heartbeat
        };
        let mut started = Instant::now();
        let vars = match q.rows(sql, VARIABLES).await {
            Err(e) if with_heartbeat && !e.breaks_connection() => {
                // Most likely the heartbeat table does not exist (yet) on this server.
                tracing::debug!(server = %self.server.name, error = %e, "heartbeat not readable");
                self.heartbeat_retry_at = Some(now + self.heartbeat_retry_after);
                started = Instant::now();
                q.rows(&statements.variables_without_heartbeat, VARIABLES)
                    .await?
            }
            other => other?,
        };
        obs.rtt = Some(started.elapsed());
        parse::parse_variables(&vars).map_err(|detail| TopologyError::Malformed {
            statement: VARIABLES,
            detail,
        })
    }
}

/// The statements of one probe on one connection, sharing one deadline.
struct Session<'a> {
    login: &'a mut Login,
    deadline: Instant,
    timeout: Duration,
}

impl Session<'_> {
    async fn run(&mut self, sql: &str, label: &'static str) -> Result<QueryResult, TopologyError> {
        match timeout_at(self.deadline, self.login.query(sql)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(source)) => Err(TopologyError::Query {
                statement: label,
                source,
            }),
            Err(_) => Err(TopologyError::Timeout {
                statement: label,
                after: self.timeout,
            }),
        }
    }

    async fn rows(&mut self, sql: &str, label: &'static str) -> Result<TextResult, TopologyError> {
        Ok(match self.run(sql, label).await? {
            QueryResult::Rows(rows) => rows,
            QueryResult::Ok(_) => TextResult::default(),
        })
    }
}

/// An ERR answer becomes the observation's error (the first one wins) and `None`; a broken
/// connection stays an error.
fn soft<T>(
    obs: &mut ServerObservation,
    result: Result<T, TopologyError>,
) -> Result<Option<T>, TopologyError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if !e.breaks_connection() => {
            obs.error.get_or_insert_with(|| e.to_string());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn write_heartbeat(
    q: &mut Session<'_>,
    table_ready: &mut bool,
    schema: &str,
    obs: &mut ServerObservation,
) -> Result<(), TopologyError> {
    if !*table_ready {
        // The schema may exist already, or the user may not create schemas: the table's
        // creation below says whether we can go on.
        let create_schema = q
            .run(
                &heartbeat::create_schema_sql(schema),
                "heartbeat CREATE DATABASE",
            )
            .await;
        if let Err(e) = create_schema {
            if e.breaks_connection() {
                return Err(e);
            }
            tracing::debug!(error = %e, "heartbeat schema not created");
        }
        let created = q
            .run(
                &heartbeat::create_table_sql(schema),
                "heartbeat CREATE TABLE",
            )
            .await;
        if soft(obs, created)?.is_none() {
            return Ok(());
        }
        *table_ready = true;
    }
    let written = q
        .run(&heartbeat::write_sql(schema), "heartbeat REPLACE")
        .await;
    if let Err(e) = &written {
        if matches!(e.server_code(), Some(ER_NO_SUCH_TABLE | ER_BAD_DB_ERROR)) {
            // Dropped behind our back: create it again next time.
            *table_ready = false;
        }
    }
    soft(obs, written).map(drop)
}
