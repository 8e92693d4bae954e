//! The JSON answers, as serde structs built from the proxy's and the monitor's types (which
//! carry no serde derives of their own). Field names are the contract documented in the crate
//! root: add fields, never rename them.

use std::sync::atomic::{AtomicU64, Ordering};

use lagless_config::{Balance, Config, Role};
use lagless_proxy::ProxyContext;
use lagless_routing::{ClusterView, ServerRef};
use lagless_topology::{BinlogPosition, Flavour, ServerObservation, ThreadState};
use serde::Serialize;
use tokio::time::Instant;

/// `GET /health`.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
}

/// `GET /backends`.
#[derive(Debug, Serialize)]
pub struct Backends {
    pub servers: Vec<Backend>,
}

/// One configured server, with routing's health and the proxy's counters.
#[derive(Debug, Serialize)]
pub struct Backend {
    pub cluster: String,
    pub name: String,
    pub address: String,
    /// As configured.
    pub role: Role,
    pub weight: u32,
    /// `"up"` or `"down"`, as routing sees it now.
    pub health: &'static str,
    /// Sessions reading from it (their sticky replica).
    pub sessions: u32,
    pub reads: u64,
    pub writes: u64,
    pub other: u64,
    pub failures: u64,
    /// Where routing learns the server's executed GTIDs besides polling: `"stream"` while its
    /// binlog stream is up (GTID streaming), else `"poll"`.
    pub gtid_source: &'static str,
    /// The binlog stream's state (`connecting`, `streaming`, `refused`, `retrying`), `None`
    /// when streaming is off.
    pub binlog_stream: Option<&'static str>,
    /// Why the stream is refused or retrying.
    pub binlog_stream_error: Option<String>,
    /// The replica's executed GTIDs as routing sees them (polled, moved forward by the stream).
    pub executed_gtid: Option<String>,
    /// A primary's binlog stream: where its last transaction ends (`file:position`).
    pub streamed_binlog_pos: Option<String>,
}

impl Backends {
    pub fn collect(ctx: &ProxyContext, view: &ClusterView) -> Self {
        let mut servers = Vec::new();
        for (ci, c) in ctx.config.clusters.iter().enumerate() {
            for (si, s) in c.servers.iter().enumerate() {
                let r = ServerRef {
                    cluster: ci,
                    server: si,
                };
                let st = ctx.cluster.stats(r);
                let stream = ctx.cluster.stream(r);
                servers.push(Backend {
                    cluster: c.name.clone(),
                    name: s.name.clone(),
                    address: s.address.clone(),
                    role: s.role,
                    weight: s.weight,
                    health: if view.is_usable(r) { "up" } else { "down" },
                    sessions: st.sessions.load(Ordering::Relaxed),
                    reads: load(&st.reads),
                    writes: load(&st.writes),
                    other: load(&st.other),
                    failures: load(&st.failures),
                    gtid_source: ctx.cluster.gtid_source(r),
                    binlog_stream: stream.as_ref().map(|s| s.state.name()),
                    binlog_stream_error: stream
                        .as_ref()
                        .and_then(|s| s.state.reason().map(str::to_string)),
                    executed_gtid: view
                        .server(r)
                        .replica
                        .as_ref()
                        .and_then(|x| x.gtids.as_ref())
                        .map(ToString::to_string),
                    streamed_binlog_pos: view
                        .server(r)
                        .streamed_binlog
                        .as_ref()
                        .map(|b| b.pos.to_string()),
                });
            }
        }
        Backends { servers }
    }
}

/// `GET /replication`.
#[derive(Debug, Serialize)]
pub struct Replication {
    /// `[monitor] enabled`: when false, `servers` stays empty.
    pub monitor_enabled: bool,
    pub servers: Vec<ReplicationServer>,
}

/// One server as the monitor's latest probe saw it.
#[derive(Debug, Serialize)]
pub struct ReplicationServer {
    pub cluster: String,
    pub name: String,
    pub address: String,
    pub reachable: bool,
    /// Observed: `"primary"`, `"replica"` or `"unknown"`.
    pub role: &'static str,
    pub read_only: Option<bool>,
    pub server_id: Option<u32>,
    /// `"mariadb"` or `"mysql"`.
    pub flavour: Option<&'static str>,
    pub version: Option<String>,
    pub io_running: Option<String>,
    pub sql_running: Option<String>,
    pub seconds_behind_master: Option<u64>,
    /// `MASTER_DELAY`, seconds.
    pub sql_delay_s: Option<u64>,
    pub heartbeat_lag_ms: Option<u64>,
    pub gtid_current_pos: Option<String>,
    pub gtid_slave_pos: Option<String>,
    pub gtid_binlog_pos: Option<String>,
    pub gtid_io_pos: Option<String>,
    /// The primary's binlog coordinates the IO thread has received up to.
    pub read_pos: Option<Position>,
    /// The primary's binlog coordinates the SQL thread has applied up to.
    pub exec_pos: Option<Position>,
    /// This server's own binlog coordinates.
    pub binlog_pos: Option<Position>,
    pub semi_sync: SemiSync,
    pub last_io_error: Option<String>,
    pub last_sql_error: Option<String>,
    pub rtt_us: Option<u64>,
    pub error: Option<String>,
    pub consecutive_failures: u32,
    /// How long ago the probe ended, in milliseconds.
    pub observed_ms_ago: u64,
}

/// A binlog coordinate.
#[derive(Debug, Serialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

#[derive(Debug, Serialize)]
pub struct SemiSync {
    pub master_status: Option<bool>,
    pub master_clients: Option<u32>,
    pub slave_status: Option<bool>,
}

impl Replication {
    pub fn collect(ctx: &ProxyContext, now: Instant) -> Self {
        let mut observations = ctx.cluster.observations();
        observations.sort_by_key(|o| (o.cluster, o.server));
        Replication {
            monitor_enabled: ctx.config.monitor.enabled,
            servers: observations
                .iter()
                .map(|o| ReplicationServer::new(&ctx.config, o, now))
                .collect(),
        }
    }
}

impl ReplicationServer {
    fn new(config: &Config, o: &ServerObservation, now: Instant) -> Self {
        let r = o.replication.as_ref();
        let role = if o.looks_like_primary() {
            "primary"
        } else if r.is_some() {
            "replica"
        } else {
            "unknown"
        };
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        ReplicationServer {
            cluster: config
                .clusters
                .get(o.cluster)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            name: o.name.clone(),
            address: o.address.clone(),
            reachable: o.reachable,
            role,
            read_only: o.read_only,
            server_id: o.server_id,
            flavour: o.flavour.map(|f| match f {
                Flavour::MariaDb => "mariadb",
                Flavour::MySql => "mysql",
            }),
            version: o.version.clone(),
            io_running: r.map(|r| thread(&r.io_running)),
            sql_running: r.map(|r| thread(&r.sql_running)),
            seconds_behind_master: r.and_then(|r| r.seconds_behind_master),
            sql_delay_s: r.map(|r| r.sql_delay),
            heartbeat_lag_ms: o.heartbeat_lag.map(|d| millis(d.as_millis())),
            gtid_current_pos: o.gtid_current_pos.clone(),
            gtid_slave_pos: o.gtid_slave_pos.clone(),
            gtid_binlog_pos: o.gtid_binlog_pos.clone(),
            gtid_io_pos: r.map(|r| r.gtid_io_pos.clone()),
            read_pos: r.map(|r| Position {
                file: r.master_log_file.clone(),
                pos: r.read_master_log_pos,
            }),
            exec_pos: r.map(|r| Position {
                file: r.relay_master_log_file.clone(),
                pos: r.exec_master_log_pos,
            }),
            binlog_pos: o.binlog.as_ref().map(position),
            semi_sync: SemiSync {
                master_status: o.semi_sync.master_status,
                master_clients: o.semi_sync.master_clients,
                slave_status: o.semi_sync.slave_status,
            },
            last_io_error: r.and_then(|r| non_empty(&r.last_io_error)),
            last_sql_error: r.and_then(|r| non_empty(&r.last_sql_error)),
            rtt_us: o.rtt.map(|d| millis(d.as_micros())),
            error: o.error.clone(),
            consecutive_failures: o.consecutive_failures,
            observed_ms_ago: millis(now.saturating_duration_since(o.observed_at).as_millis()),
        }
    }
}

/// `GET /status`.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Lagless's version.
    pub version: &'static str,
    /// The version announced to clients.
    pub server_version: String,
    pub uptime_ms: u64,
    pub counters: Counters,
    pub config: ConfigSummary,
    /// Failovers, switchovers, rejoins and quarantines, oldest first (the last 50).
    pub ha_events: Vec<HaEvent>,
}

/// One high-availability action, step by step.
#[derive(Debug, Serialize)]
pub struct HaEvent {
    /// When it ended, in ms since the proxy started.
    pub at_ms: u64,
    pub cluster: String,
    /// failover, failover_failed, adopted, switchover, switchover_failed, rejoin, quarantine.
    pub kind: &'static str,
    pub server: String,
    pub summary: String,
    pub total_ms: Option<f64>,
    /// GTID ranges the old primary has and the new one lacks: possibly lost by a failover.
    pub possibly_lost: Vec<String>,
    pub steps: Vec<HaEventStep>,
}

#[derive(Debug, Serialize)]
pub struct HaEventStep {
    pub server: String,
    pub step: String,
    pub statement: Option<String>,
    pub at_ms: f64,
    pub took_ms: f64,
    pub outcome: String,
}

impl HaEvent {
    fn from_record(r: lagless_proxy::ha_history::HaRecord) -> Self {
        HaEvent {
            at_ms: r.at_ms,
            cluster: r.cluster,
            kind: r.kind,
            server: r.server,
            summary: r.summary,
            total_ms: r.total_ms,
            possibly_lost: r.possibly_lost,
            steps: r
                .steps
                .into_iter()
                .map(|s| HaEventStep {
                    server: s.server,
                    step: s.step,
                    statement: s.statement,
                    at_ms: s.at_ms,
                    took_ms: s.took_ms,
                    outcome: s.outcome,
                })
                .collect(),
        }
    }
}

/// The proxy-wide counters, since start.
#[derive(Debug, Serialize)]
pub struct Counters {
    pub connections_active: u64,
    pub connections_accepted: u64,
    pub commands: u64,
    pub auth_failures: u64,
    pub backend_errors: u64,
    pub unknown_statements: u64,
    pub hints_ignored: u64,
    pub read_retries: u64,
    /// Reads sent to the primary because no replica had the session's writes yet.
    pub reads_behind: u64,
    /// `SET NAMES` answered by Lagless without a server.
    pub set_names_answered: u64,
    /// Optimistic transactions moved to the primary / rolled back because a replayed result
    /// differed / rolled back because they could not be replayed.
    pub optimistic_moved: u64,
    pub optimistic_differed: u64,
    pub optimistic_unreplayable: u64,
    /// Transactions whose connection was lost, replayed and gone on / rolled back.
    pub transactions_resumed: u64,
    pub transactions_not_resumed: u64,
}

/// The settings that shape routing.
#[derive(Debug, Serialize)]
pub struct ConfigSummary {
    pub listener_address: String,
    /// The client Unix socket's path, when configured.
    pub listener_socket: Option<String>,
    pub max_connections: u32,
    pub consistency_default: String,
    pub max_replica_lag_s: Option<u64>,
    pub balance: Balance,
    pub primary_in_read_pool: bool,
    pub optimistic_transactions: bool,
    pub transaction_replay: bool,
    pub monitor_enabled: bool,
}

impl Status {
    pub fn collect(ctx: &ProxyContext) -> Self {
        let s = &ctx.stats;
        let c = &ctx.config;
        Status {
            version: env!("CARGO_PKG_VERSION"),
            server_version: ctx.server_version.clone(),
            uptime_ms: ctx.now_ms(),
            counters: Counters {
                connections_active: load(&s.connections_active),
                connections_accepted: load(&s.connections_accepted),
                commands: load(&s.commands),
                auth_failures: load(&s.auth_failures),
                backend_errors: load(&s.backend_errors),
                unknown_statements: load(&s.unknown_statements),
                hints_ignored: load(&s.hints_ignored),
                read_retries: load(&s.read_retries),
                reads_behind: load(&s.reads_behind),
                set_names_answered: load(&s.set_names_answered),
                optimistic_moved: load(&s.optimistic_moved),
                optimistic_differed: load(&s.optimistic_differed),
                optimistic_unreplayable: load(&s.optimistic_unreplayable),
                transactions_resumed: load(&s.transactions_resumed),
                transactions_not_resumed: load(&s.transactions_not_resumed),
            },
            config: ConfigSummary {
                listener_address: c.listener.address.to_string(),
                listener_socket: c.listener.socket.as_ref().map(|p| p.display().to_string()),
                max_connections: c.listener.max_connections,
                consistency_default: c.consistency.default.to_string(),
                max_replica_lag_s: c.consistency.max_replica_lag.map(|d| d.as_secs()),
                balance: c.routing.balance,
                primary_in_read_pool: c.routing.primary_in_read_pool,
                optimistic_transactions: c.routing.optimistic_transactions,
                transaction_replay: c.failover.transaction_replay,
                monitor_enabled: c.monitor.enabled,
            },
            ha_events: ctx
                .ha
                .records()
                .into_iter()
                .map(HaEvent::from_record)
                .collect(),
        }
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn millis(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn position(b: &BinlogPosition) -> Position {
    Position {
        file: b.file.clone(),
        pos: b.pos,
    }
}

/// A replication thread's state in the server's own words.
fn thread(t: &ThreadState) -> String {
    match t {
        ThreadState::Yes => "Yes".into(),
        ThreadState::No => "No".into(),
        ThreadState::Connecting => "Connecting".into(),
        ThreadState::Other(s) => s.clone(),
    }
}
