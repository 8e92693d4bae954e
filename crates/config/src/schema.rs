//! The TOML file as written by users. Every table denies unknown keys.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listener: RawListener,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub consistency: RawConsistency,
    #[serde(default)]
    pub monitor: RawMonitor,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub failover: RawFailover,
    #[serde(default)]
    pub pool: RawPool,
}

/// `[pool]`: backend connections shared between client sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPool {
    /// A session without connection-bound state (transaction, temporary tables, user
    /// variables, locks, prepared statements) gives its backend connections back to the pool
    /// after each statement, so that many clients share few server connections.
    pub multiplex: bool,
    /// Backend connections per server, in use and idle together (0: no cap).
    pub max_per_server: u32,
    /// Idle connections kept per server; more are closed when given back.
    pub max_idle_per_server: u32,
    /// How long a statement waits for a connection when a server is at its cap.
    pub wait_timeout_ms: u64,
    /// After a statement that generated an AUTO_INCREMENT value or had warnings, its
    /// connection stays with the session for the next statement (LAST_INSERT_ID(),
    /// SHOW WARNINGS), or until the session has been idle this long.
    pub hold_ms: u64,
}

impl Default for RawPool {
    fn default() -> Self {
        RawPool {
            multiplex: true,
            max_per_server: 0,
            max_idle_per_server: 64,
            wait_timeout_ms: 10_000,
            hold_ms: 2_000,
        }
    }
}

/// `[failover]`: automatic promotion of a replica when the primary fails.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFailover {
    /// Off by default for production; `lagless demo` turns it on.
    pub enabled: bool,
    /// Consecutive failed probes of the primary before it may be declared failed (its
    /// replicas must also have stopped receiving from it).
    pub failcount: u32,
    /// Writes arriving while a failover runs wait this long for the new primary.
    pub hold_writes_ms: u64,
    /// Bound on waiting for the candidate to apply what it received.
    pub apply_timeout_ms: u64,
    /// `MASTER_HEARTBEAT_PERIOD` (ms) for the replicas Lagless repoints; 0 leaves the server's
    /// default (half of `slave_net_timeout`). A stalled primary is detected after about 1.5
    /// periods without heartbeats.
    pub replica_heartbeat_ms: u64,
    /// Where the failover lock is taken before promoting: `majority` (of the servers other
    /// than the failed primary: safe with several proxies) or `candidate` (the candidate only:
    /// fails over with most replicas down too, safe with a single failover proxy).
    pub lock: FailoverLock,
    /// A transaction whose primary connection is lost (the primary died and was failed over,
    /// or the connection was killed) is replayed on the primary, checked, and goes on
    /// (MaxScale's `transaction_replay`). Keeps every transaction's statements and a digest of
    /// their results while it runs.
    pub transaction_replay: bool,
}

/// `[failover] lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverLock {
    #[default]
    Majority,
    Candidate,
}

impl Default for RawFailover {
    fn default() -> Self {
        RawFailover {
            enabled: false,
            failcount: 1,
            hold_writes_ms: 5000,
            apply_timeout_ms: 5000,
            replica_heartbeat_ms: 250,
            lock: FailoverLock::Majority,
            transaction_replay: false,
        }
    }
}

/// `[admin]`: the HTTP admin interface (read-only JSON, no authentication: keep it on loopback).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    pub enabled: bool,
    pub address: String,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            enabled: true,
            address: "127.0.0.1:6034".into(),
        }
    }
}

/// `[monitor]`: the replication monitor.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMonitor {
    pub enabled: bool,
    /// How often every server is probed.
    pub interval_ms: u64,
    /// Bound on each probe: a server that does not answer within it is reported unreachable.
    pub timeout_ms: u64,
    /// Write a heartbeat row on the primary each interval and measure replica lag from it.
    pub heartbeat: bool,
    pub heartbeat_schema: String,
    /// Also read every replica's binlog as a replication client, to learn its executed GTIDs
    /// within milliseconds (needs REPLICATION SLAVE; a server that refuses is polled only).
    pub binlog_streaming: BinlogStreaming,
    /// The replication server id of those binlog connections; 0 picks one at random in
    /// 0x4C000000..=0x4CFFFFFF. Must differ from every server's and replica's server_id.
    pub binlog_server_id: u32,
    /// Stream the primary's binlog too (no confirmations): the `position` and `pos_wait`
    /// modes then learn where a write ends in it within milliseconds, not at the next probe.
    pub binlog_stream_primary: StreamPrimary,
}

/// `[monitor] binlog_streaming`: `true`, `false` or `"auto"` (also `"on"`, `"off"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinlogStreaming {
    /// From the start if a configured mode (the default or a user's) judges replicas by their
    /// executed GTIDs (`gtid`, `gtid_wait`, `global`), else from the first statement of a
    /// session in such a mode: a proxy whose sessions use none of them does not receive and
    /// parse every write's events once per replica.
    #[default]
    Auto,
    /// From the start.
    On,
    /// Never: replicas' GTIDs come from the probes only.
    Off,
}

impl<'de> Deserialize<'de> for BinlogStreaming {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(true) => Ok(Self::On),
            Raw::Flag(false) => Ok(Self::Off),
            Raw::Word(w) => match w.as_str() {
                "auto" => Ok(Self::Auto),
                "on" => Ok(Self::On),
                "off" => Ok(Self::Off),
                _ => Err(serde::de::Error::custom(format!(
                    "binlog_streaming = {w:?}: expected true, false or \"auto\""
                ))),
            },
        }
    }
}

impl Serialize for BinlogStreaming {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::On => s.serialize_bool(true),
            Self::Off => s.serialize_bool(false),
        }
    }
}

/// `[monitor] binlog_stream_primary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamPrimary {
    /// From the start if a configured mode (the default or a user's) is `position` or
    /// `pos_wait`, else from the first write of a session in such a mode.
    #[default]
    Auto,
    /// From the start.
    On,
    /// Never: those modes learn positions from the probes.
    Off,
}

impl Default for RawMonitor {
    fn default() -> Self {
        RawMonitor {
            enabled: true,
            interval_ms: 250,
            timeout_ms: 1000,
            heartbeat: false,
            heartbeat_schema: "lagless".into(),
            binlog_streaming: BinlogStreaming::Auto,
            binlog_server_id: 0,
            binlog_stream_primary: StreamPrimary::Auto,
        }
    }
}

/// `[consistency]`: how fresh reads are by default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConsistency {
    /// The mode of every session unless its user or the session says otherwise.
    pub default: String,
    /// Replicas lagging more than this (Seconds_Behind_Master or heartbeat) serve no reads, in
    /// any mode. 0: no bound.
    pub max_replica_lag_s: u64,
}

impl Default for RawConsistency {
    fn default() -> Self {
        RawConsistency {
            default: "gtid".into(),
            max_replica_lag_s: 0,
        }
    }
}

/// `[routing]`: how reads are spread.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRouting {
    /// How a session picks its replica: random, round_robin, least_connections, weighted.
    pub balance: Balance,
    /// The primary also serves reads, as one more member of the read pool.
    pub primary_in_read_pool: bool,
    /// Where CALL goes: "primary" (default) or "replica" (for procedures known to only read).
    pub call: RouteTo,
    /// Read-write transactions start on a replica and move to the primary, replayed and
    /// checked, at their first statement a replica cannot run (MaxScale's `optimistic_trx`).
    pub optimistic_transactions: bool,
}

impl Default for RawRouting {
    fn default() -> Self {
        RawRouting {
            balance: Balance::Random,
            primary_in_read_pool: false,
            call: RouteTo::Primary,
            optimistic_transactions: false,
        }
    }
}

/// Replica choice policy, made once per session (sticky while the replica stays healthy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Uniform among healthy replicas.
    Random,
    /// In turn, across sessions.
    RoundRobin,
    /// The replica with the fewest sessions using it.
    LeastConnections,
    /// Random, in proportion to each server's weight.
    Weighted,
}

/// A role a statement can be sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteTo {
    Primary,
    Replica,
}

/// A user's default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRoute {
    /// Read/write splitting (the default).
    #[default]
    Auto,
    /// Everything to the primary.
    Primary,
}

/// `[[rules]]`: evaluated in order, the first that matches decides. Every condition given must
/// hold; a rule with no condition matches everything.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Option<String>,
    pub user: Option<String>,
    pub schema: Option<String>,
    /// Glob on table names (`*` and `?`), e.g. `audit_*`. Matches if any table of the
    /// statement matches.
    pub table: Option<String>,
    /// Regular expression on table names, instead of `table`.
    pub table_regex: Option<String>,
    /// Statement class: read, write, any (default).
    pub class: Option<RuleClass>,
    /// "primary", "replica", "cluster:NAME" or "backend:NAME".
    pub target: String,
}

/// The class condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleClass {
    /// Statements a replica could answer.
    Read,
    /// Everything else.
    Write,
    Any,
}

/// `[listener]`: where clients connect and what they are told.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawListener {
    pub address: String,
    /// Also accept clients on this Unix socket (an absolute path), as mariadbd's `socket`.
    pub socket: Option<String>,
    pub max_connections: u32,
    pub max_allowed_packet: u64,
    pub server_version: Option<String>,
    pub local_infile: bool,
    /// Runtime worker threads; absent: one per CPU core.
    pub worker_threads: Option<u32>,
    /// Pins each runtime worker thread to one CPU of those the process may use.
    pub pin_worker_threads: bool,
    /// How sessions are spread over the worker threads.
    pub runtime: RuntimeModel,
}

/// How the proxy's worker threads share the client sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeModel {
    /// One work-stealing runtime: any worker may run any session.
    #[default]
    MultiThread,
    /// One single-threaded runtime per worker; a session and its backend connections stay on
    /// the worker it was given, so a statement never wakes another thread.
    ThreadPerCore,
}

impl Default for RawListener {
    fn default() -> Self {
        RawListener {
            address: "127.0.0.1:6033".into(),
            socket: None,
            max_connections: 10_000,
            max_allowed_packet: 64 * 1024 * 1024,
            server_version: None,
            local_infile: false,
            worker_threads: None,
            pin_worker_threads: false,
            runtime: RuntimeModel::default(),
        }
    }
}

/// `[timeouts]`, all in milliseconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    pub connect_ms: u64,
    pub handshake_ms: u64,
    pub shutdown_grace_ms: u64,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            connect_ms: 2_000,
            handshake_ms: 10_000,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `[[users]]`: a client account. Only password hashes are stored (see `lagless passwd`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    /// `*` followed by 40 hex digits: SHA1(SHA1(password)), as MariaDB's PASSWORD() prints it.
    pub native_password: Option<String>,
    /// 64 hex digits: SHA256(SHA256(password)), enough for caching_sha2_password fast auth.
    pub caching_sha2_password: Option<String>,
    /// The cluster this user's sessions use; defaults to the first cluster.
    pub cluster: Option<String>,
    /// "auto" (read/write splitting, the default) or "primary" (everything to the primary).
    #[serde(default)]
    pub route: UserRoute,
    /// This user's consistency mode (default: `[consistency] default`).
    pub consistency: Option<String>,
}

/// `[[clusters]]`: a primary and its replicas.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    /// The account Lagless logs in to the servers with.
    pub user: String,
    pub password: Option<String>,
    /// Name of an environment variable holding the password (instead of `password`).
    pub password_env: Option<String>,
    /// The account the monitor uses (needs REPLICA MONITOR / REPLICATION CLIENT, BINLOG
    /// MONITOR); defaults to `user`.
    pub monitor_user: Option<String>,
    pub monitor_password: Option<String>,
    /// The account replicas use to connect to a promoted primary (REPLICATION SLAVE).
    pub replication_user: Option<String>,
    pub replication_password: Option<String>,
    pub servers: Vec<RawServer>,
}

/// `[[clusters.servers]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// The server's Unix socket, when Lagless runs on its host: Lagless's own connections
    /// (the pool, the monitor, binlog streams) then use it instead of `address`, which stays
    /// the server's identity for replication and failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    pub role: Role,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Preference among equally advanced failover candidates (higher first).
    #[serde(default)]
    pub priority: i32,
    /// Never promote this server.
    #[serde(default)]
    pub no_failover: bool,
}

fn default_weight() -> u32 {
    1
}

/// What a server is configured as. The topology monitor may later learn otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
    /// The primary's partner in a primary/standby pair (dual-primary replication, only one
    /// writable at a time): replicates from the primary, gets no traffic, and is the first
    /// choice of a failover.
    Standby,
}
