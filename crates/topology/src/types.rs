//! What the monitor publishes: plain data, copied out of the servers' answers.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::MonitoredServer;

/// Everything the monitor knows at one moment, one entry per configured server, in the
/// configuration's order.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub servers: Vec<ServerObservation>,
    /// When this snapshot was published.
    pub taken_at: Instant,
    /// The round of probes it belongs to: 0 for the initial snapshot, published before any
    /// probe finished (every server then reads "not probed yet").
    pub round: u64,
}

impl Snapshot {
    /// The observation of server `server` of cluster `cluster`.
    pub fn get(&self, cluster: usize, server: usize) -> Option<&ServerObservation> {
        self.servers
            .iter()
            .find(|o| o.cluster == cluster && o.server == server)
    }

    /// The observation of the server named `name`.
    pub fn by_name(&self, name: &str) -> Option<&ServerObservation> {
        self.servers.iter().find(|o| o.name == name)
    }
}

/// MariaDB or MySQL, from the version string (MariaDB's contains `MariaDB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    MariaDb,
    MySql,
}

/// One server as one probe saw it. Every field other than the identity, `reachable`, `error`,
/// `consecutive_failures` and `observed_at` holds what this probe read, and is `None` when it
/// could not be read (server unreachable, statement refused) or does not apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerObservation {
    /// The caller's cluster index.
    pub cluster: usize,
    /// The caller's server index within the cluster.
    pub server: usize,
    pub name: String,
    pub address: String,
    /// The server answered this probe within the timeouts (an ERR answer counts as an answer).
    pub reachable: bool,
    /// The first thing that went wrong in this probe, if anything did (also set when
    /// `reachable` is true, e.g. for a statement the monitor user may not run).
    pub error: Option<String>,
    /// Consecutive probes, up to and including this one, in which the server was unreachable.
    pub consecutive_failures: u32,
    /// The time taken by the probe's first statement (a `SELECT` of variables): network round
    /// trip plus the server's work on it.
    pub rtt: Option<Duration>,
    /// `@@read_only`.
    pub read_only: Option<bool>,
    pub server_id: Option<u32>,
    pub flavour: Option<Flavour>,
    /// `@@version`, e.g. `10.11.19-MariaDB-0+deb12u1-log`.
    pub version: Option<String>,
    /// MariaDB `@@gtid_current_pos`, raw.
    pub gtid_current_pos: Option<String>,
    /// MariaDB `@@gtid_slave_pos` (what this server applied as a replica), raw.
    pub gtid_slave_pos: Option<String>,
    /// MariaDB `@@gtid_binlog_pos` (what this server wrote to its binlog), raw.
    pub gtid_binlog_pos: Option<String>,
    /// MySQL `@@gtid_executed`, raw.
    pub gtid_executed: Option<String>,
    /// The replication connection, `None` when this server replicates from nobody.
    pub replication: Option<ReplicaStatus>,
    /// A writable server's link back from its standby (dual-primary replication): kept apart
    /// from `replication`, since the server is a primary.
    pub dual_primary_link: Option<ReplicaStatus>,
    /// This server's own binlog coordinates, `None` when binary logging is off.
    pub binlog: Option<BinlogPosition>,
    pub semi_sync: SemiSync,
    /// Age of the heartbeat row on a replica (see [`crate::heartbeat`]); `None` on servers
    /// without replication, when the heartbeat is off, or before its first row arrived.
    pub heartbeat_lag: Option<Duration>,
    /// When this probe ended.
    pub observed_at: Instant,
}

impl ServerObservation {
    /// An observation with nothing read yet.
    pub fn blank(server: &MonitoredServer, observed_at: Instant) -> Self {
        ServerObservation {
            cluster: server.cluster,
            server: server.server,
            name: server.name.clone(),
            address: server.address.clone(),
            reachable: false,
            error: None,
            consecutive_failures: 0,
            rtt: None,
            read_only: None,
            server_id: None,
            flavour: None,
            version: None,
            gtid_current_pos: None,
            gtid_slave_pos: None,
            gtid_binlog_pos: None,
            gtid_executed: None,
            replication: None,
            dual_primary_link: None,
            binlog: None,
            semi_sync: SemiSync::default(),
            heartbeat_lag: None,
            observed_at,
        }
    }

    /// The placeholder published before a server's first probe finished.
    pub(crate) fn not_probed(server: &MonitoredServer, now: Instant) -> Self {
        ServerObservation {
            error: Some("not probed yet".into()),
            ..Self::blank(server, now)
        }
    }

    /// Writable and replicating from nobody: what a primary looks like.
    pub fn looks_like_primary(&self) -> bool {
        self.reachable && self.read_only == Some(false) && self.replication.is_none()
    }
}

/// State of a replication thread (`Slave_IO_Running`, `Slave_SQL_Running`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ThreadState {
    Yes,
    #[default]
    No,
    /// IO thread only: (re)connecting to its primary.
    Connecting,
    /// Anything else the server says (e.g. MariaDB's `Preparing`).
    Other(String),
}

impl ThreadState {
    pub fn is_running(&self) -> bool {
        *self == ThreadState::Yes
    }
}

/// A replica's replication connection, from `SHOW ALL SLAVES STATUS` (MariaDB) or
/// `SHOW REPLICA STATUS` (MySQL; same fields under their `Source`/`Replica` names). The
/// default is a stopped connection to nowhere (tests build on it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// MariaDB `Connection_name` / MySQL `Channel_Name`; empty for the default connection.
    pub connection_name: String,
    pub io_running: ThreadState,
    pub sql_running: ThreadState,
    /// `None` when the server says NULL (a thread stopped, or not connected): never a
    /// read-your-writes signal.
    pub seconds_behind_master: Option<u64>,
    pub master_host: String,
    pub master_port: u16,
    /// The primary's binlog file and position the IO thread has received up to.
    pub master_log_file: String,
    pub read_master_log_pos: u64,
    /// The primary's binlog file and position the SQL thread has applied up to.
    pub relay_master_log_file: String,
    pub exec_master_log_pos: u64,
    /// What the IO thread has received: MariaDB `Gtid_IO_Pos`, MySQL `Retrieved_Gtid_Set`. Raw.
    pub gtid_io_pos: String,
    /// MariaDB `Using_Gtid` (`No`, `Slave_Pos`, `Current_Pos`); MySQL `Auto_Position` (0 or 1).
    pub using_gtid: String,
    /// `MASTER_DELAY` in seconds.
    pub sql_delay: u64,
    pub last_io_errno: u32,
    /// Empty when none.
    pub last_io_error: String,
    pub last_sql_errno: u32,
    /// Empty when none.
    pub last_sql_error: String,
    /// MariaDB `Slave_received_heartbeats`: heartbeats received from the primary since the
    /// connection was configured. `None` where the server does not report it (MySQL).
    pub received_heartbeats: Option<u64>,
    /// MariaDB `Slave_heartbeat_period`: the primary sends a heartbeat after this long without
    /// events. `None` when unknown or 0 (heartbeats off).
    pub heartbeat_period: Option<Duration>,
}

impl ReplicaStatus {
    /// Both threads run.
    pub fn is_running(&self) -> bool {
        self.io_running.is_running() && self.sql_running.is_running()
    }
}

/// A binlog coordinate (`SHOW MASTER STATUS`: File, Position).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
}

/// Semi-synchronous replication state from the status variables; each field is `None` when the
/// server does not have the variable (plugin not loaded) or it was not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SemiSync {
    /// `Rpl_semi_sync_master_status` (MySQL 8.0.26+: `..._source_status`): commits wait for an
    /// acknowledgement right now.
    pub master_status: Option<bool>,
    /// `Rpl_semi_sync_master_clients`: semi-sync replicas connected.
    pub master_clients: Option<u32>,
    /// `Rpl_semi_sync_slave_status` (`..._replica_status`).
    pub slave_status: Option<bool>,
}
