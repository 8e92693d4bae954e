//! Failover, switchover, fencing and rejoining for a MariaDB replica set (GTID replication with
//! `gtid_strict_mode`, one primary, replicas one level below it).
//!
//! Two halves:
//!
//! - **Decisions, pure** (no I/O, time as an input, unit- and property-tested):
//!   - [`primary_failed`]: is the primary down, from the monitor's [`Snapshot`](crate::Snapshot)s?
//!     Only after confirmed failures: its own probes failed [`DetectionPolicy::failcount`] times
//!     in a row for at least [`DetectionPolicy::min_unreachable`], *and* every reachable
//!     replica has stopped receiving from it (IO thread not `Yes`, an IO error, or no event
//!     and no heartbeat for 2 heartbeat periods + 500 ms). A busy
//!     primary whose replicas still receive is never declared failed.
//!   - [`choose_candidate`]: the replica to promote: one holding every transaction any
//!     reachable replica received (with semi-sync, every acknowledged one), then the most
//!     applied, then priority, then name.
//!   - [`errant_transactions`]: may a fenced old primary rejoin as a replica of the new one, or
//!     does it hold transactions the new primary does not have?
//!   - [`promoted_primary`]: is there already a promoted primary (a reachable, writable server
//!     that replicates from nobody)?
//! - **Actions, I/O** over control connections of the `lagless_backend` crate, logged in with
//!   the admin account of [`FailoverOptions`]; every statement bounded by a timeout, every step
//!   timed and recorded as an [`Event`]:
//!   - [`failover`]: promote the candidate and repoint the other replicas.
//!   - [`switchover`]: a planned change with zero lost writes.
//!   - [`fence`]: `SET GLOBAL read_only = 1` on an old primary that is reachable again.
//!   - [`rejoin`]: an old primary becomes a replica of the new one, or is quarantined.
//!   - [`repoint`]: one replica to a new primary (for replicas unreachable during a failover).
//!   - [`with_failover_lock`]: serialise proxies that would fail over at the same moment.
//!
//! A failover as the proxy drives it:
//!
//! ```no_run
//! # async fn demo(history: Vec<std::sync::Arc<lagless_topology::Snapshot>>) {
//! use lagless_topology::failover::*;
//! use tokio::time::Instant;
//!
//! let opts = FailoverOptions::new(Account::new("admin", "..."), Account::new("repl", "..."));
//! let verdict = primary_failed(&history, "primary", &DetectionPolicy::default(), Instant::now());
//! if verdict.is_failed() {
//!     let servers = &history.last().unwrap().servers;
//!     let candidate = choose_candidate(servers, &[], &["primary"]).expect("a candidate");
//!     let members: Vec<Member> = servers.iter().map(Member::from).collect();
//!     match with_failover_lock(&members, "primary", &candidate.member(), &opts, || {
//!         failover(servers, &candidate, &opts)
//!     })
//!     .await
//!     {
//!         Ok(Locked::Ran(Ok(report))) => println!("{report}"),
//!         Ok(Locked::Ran(Err(e))) => eprintln!("failover failed: {e}"),
//!         Ok(Locked::AlreadyPromoted { primary }) => println!("{primary} was promoted by another proxy"),
//!         Err(e) => eprintln!("lock: {e}"),
//!     }
//! }
//! # }
//! ```
//!
//! What is *not* here (the proxy's part): holding writes during a switchover, routing to the
//! new primary, refusing to route writes to a fenced server.
//!
//! MariaDB only: MySQL GTID sets (`gtid_executed`) are not handled, and a server that reports
//! none of MariaDB's GTID variables is never a candidate.

mod candidate;
mod conn;
mod detect;
mod error;
mod events;
mod execute;
mod history;
mod lock;
mod switchover;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use candidate::{choose_candidate, Candidate, NoCandidate, Rejected, Rejection};
pub use detect::{
    last_primary, primary_failed, promoted_primary, DetectionPolicy, Failure, Pending, Suspicion,
    Verdict,
};
pub use error::{FailoverError, StepError};
pub use events::{Event, Outcome, Step};
pub use execute::{
    failover, fence, rejoin, repoint, ActionReport, ApplyOutcome, FailoverReport, RejoinOutcome,
    RejoinReport, RepointOutcome,
};
pub use history::{errant_transactions, unapplied, GtidRange};
pub use lock::{with_failover_lock, Locked, LOCK_NAME};
pub use switchover::{switchover, SwitchoverReport};

use crate::types::ServerObservation;

/// Default bound on connecting and logging in.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default bound on one statement.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound on waiting for the candidate to apply what it received.
pub const DEFAULT_APPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on waiting for a switchover's target to catch up.
pub const DEFAULT_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on waiting for a repointed replica's threads to run.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound on waiting, as the loser of [`with_failover_lock`], for the winner's result.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);
/// Default `MASTER_HEARTBEAT_PERIOD` for repointed replicas: an idle primary is heard from four
/// times a second, so a stalled one is noticed after about 1 s (2 periods + 500 ms).
pub const DEFAULT_HEARTBEAT_PERIOD: Duration = Duration::from_millis(250);

/// A server to act on: its name (as in the snapshots) and `host:port` address.
///
/// The address is used both to connect and in `CHANGE MASTER TO MASTER_HOST=..,
/// MASTER_PORT=..` on the other servers: it must be reachable from the replicas as well as
/// from the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    pub name: String,
    /// `host:port` (`[v6]:port` for an IPv6 literal).
    pub address: String,
}

impl Member {
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Member {
            name: name.into(),
            address: address.into(),
        }
    }

    /// The host and port of [`Member::address`]; `None` when it is not `host:port`.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = port.parse().ok()?;
        (!host.is_empty()).then_some((host, port))
    }
}

impl From<&ServerObservation> for Member {
    fn from(o: &ServerObservation) -> Self {
        Member::new(o.name.clone(), o.address.clone())
    }
}

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub password: String,
}

impl Account {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Account {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("Account")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Credentials, timeouts and options of the actions. [`FailoverOptions::new`] fills in the
/// defaults.
#[derive(Clone)]
pub struct FailoverOptions {
    /// Logs in to every server. Needs SUPER or, on MariaDB 10.5+, READ_ONLY ADMIN, REPLICATION
    /// SLAVE ADMIN, BINLOG ADMIN (for `gtid_slave_pos`), REPLICA MONITOR and BINLOG MONITOR.
    pub admin: Account,
    /// Put into `CHANGE MASTER TO MASTER_USER=.., MASTER_PASSWORD=..`: the account replicas
    /// use to connect to the new primary (REPLICATION SLAVE).
    pub replication: Account,
    /// Bound on connecting and logging in to one server.
    pub connect_timeout: Duration,
    /// Bound on one statement (the waits below have their own).
    pub statement_timeout: Duration,
    /// Failover: bound on waiting for the candidate to apply what it received (see
    /// [`failover`] for why it proceeds after this time).
    pub apply_timeout: Duration,
    /// Switchover: bound on waiting for the target to apply the old primary's last
    /// transaction; past it the switchover is abandoned and the old primary made writable
    /// again.
    pub catch_up_timeout: Duration,
    /// Bound on waiting for a repointed replica's IO and SQL threads to run.
    pub verify_timeout: Duration,
    /// [`with_failover_lock`]: how long the loser waits for the winner's promoted primary.
    pub lock_wait: Duration,
    /// The cluster runs semi-synchronous replication: the new primary gets
    /// `rpl_semi_sync_master_enabled = ON` (wait point AFTER_SYNC), and a rejoining old
    /// primary `rpl_semi_sync_master_enabled = OFF`, `rpl_semi_sync_slave_enabled = ON`.
    pub semi_sync: bool,
    /// `MASTER_HEARTBEAT_PERIOD` for replicas Lagless points at a primary (`None`: the server's
    /// default, half of `slave_net_timeout`). Short periods let detection see a stalled
    /// primary sooner (see [`primary_failed`]).
    pub heartbeat_period: Option<Duration>,
    /// Which servers [`with_failover_lock`] must lock before acting.
    pub lock_scope: LockScope,
    /// Called by [`failover`] and [`switchover`] as soon as the new primary answered
    /// `SET GLOBAL read_only = 0`, before the other replicas are repointed: the moment to send
    /// writes (held ones first) to it. Must not block.
    pub on_promoted: Option<PromotionHook>,
}

/// Where [`with_failover_lock`] takes its lock (see the `lock` module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockScope {
    /// A majority of the cluster's servers other than the failed primary: safe with several
    /// proxies, whatever candidates they choose; no failover when most replicas are down too.
    #[default]
    Majority,
    /// The candidate only: fails over as long as a candidate is reachable; safe only when one
    /// proxy does failover (or all always choose the same candidate).
    Candidate,
}

/// See [`FailoverOptions::on_promoted`].
pub type PromotionHook = Arc<dyn Fn(&Member) + Send + Sync>;

impl FailoverOptions {
    pub fn new(admin: Account, replication: Account) -> Self {
        FailoverOptions {
            admin,
            replication,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            apply_timeout: DEFAULT_APPLY_TIMEOUT,
            catch_up_timeout: DEFAULT_CATCH_UP_TIMEOUT,
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
            lock_wait: DEFAULT_LOCK_WAIT,
            semi_sync: false,
            heartbeat_period: Some(DEFAULT_HEARTBEAT_PERIOD),
            lock_scope: LockScope::Majority,
            on_promoted: None,
        }
    }
}

impl fmt::Debug for FailoverOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverOptions")
            .field("admin", &self.admin)
            .field("replication", &self.replication)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("apply_timeout", &self.apply_timeout)
            .field("catch_up_timeout", &self.catch_up_timeout)
            .field("verify_timeout", &self.verify_timeout)
            .field("lock_wait", &self.lock_wait)
            .field("semi_sync", &self.semi_sync)
            .field("heartbeat_period", &self.heartbeat_period)
            .field("lock_scope", &self.lock_scope)
            .field("on_promoted", &self.on_promoted.is_some())
            .finish()
    }
}

/// `text` as an SQL string literal (the control connections run with `sql_mode = ''`, so
/// backslashes escape).
pub(crate) fn quote_str(text: &str) -> String {
    lagless_sql::quote_literal(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(
            Member::new("a", "127.0.0.1:3310").host_port(),
            Some(("127.0.0.1", 3310))
        );
        assert_eq!(
            Member::new("a", "[::1]:3310").host_port(),
            Some(("::1", 3310))
        );
        assert_eq!(
            Member::new("a", "db.example:3306").host_port(),
            Some(("db.example", 3306))
        );
        assert_eq!(Member::new("a", "nope").host_port(), None);
        assert_eq!(Member::new("a", ":3306").host_port(), None);
        assert_eq!(Member::new("a", "h:99999").host_port(), None);
    }

    #[test]
    fn quoting_and_debug() {
        assert_eq!(quote_str("a'b\\c"), "'a''b\\\\c'");
        let a = Account::new("u", "hunter2");
        assert!(!format!("{a:?}").contains("hunter2"));
        let o = FailoverOptions::new(a.clone(), a);
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
