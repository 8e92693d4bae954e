//! From [`RawConfig`] to a [`Config`] the rest of Lagless can trust.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::consistency::Consistency;
use crate::schema::{
    Balance, BinlogStreaming, FailoverLock, RawCluster, RawConfig, RawRule, RawUser, Role, RouteTo,
    RuleClass, RuntimeModel, StreamPrimary, UserRoute,
};

/// Why a configuration was refused. Messages name the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration: {key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listener: Listener,
    pub timeouts: Timeouts,
    pub users: Vec<User>,
    pub clusters: Vec<Cluster>,
    pub routing: Routing,
    pub rules: Vec<Rule>,
    pub consistency: ConsistencyConfig,
    pub monitor: Monitor,
    /// Where the HTTP admin interface listens, when enabled.
    pub admin: Option<SocketAddr>,
    pub failover: Failover,
    pub pool: Pool,
}

/// `[pool]`, validated.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    pub multiplex: bool,
    /// None: no cap.
    pub max_per_server: Option<u32>,
    pub max_idle_per_server: u32,
    pub wait_timeout: Duration,
    pub hold: Duration,
}

/// `[failover]`, validated.
#[derive(Debug, Clone, Copy)]
pub struct Failover {
    pub enabled: bool,
    pub failcount: u32,
    pub hold_writes: Duration,
    pub apply_timeout: Duration,
    /// `None`: the server's default heartbeat period.
    pub replica_heartbeat: Option<Duration>,
    pub lock: FailoverLock,
    pub transaction_replay: bool,
}

/// `[monitor]`, validated.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
    /// The heartbeat table's schema, when heartbeats are on.
    pub heartbeat_schema: Option<String>,
    /// GTID streaming from each replica's binlog.
    pub binlog_streaming: BinlogStreaming,
    /// The streams' replication server id (`None`: random).
    pub binlog_server_id: Option<u32>,
    /// Whether streams also read writable servers (primaries), for write positions.
    pub binlog_stream_primary: StreamPrimary,
}

/// `[consistency]`, validated.
#[derive(Debug, Clone, Copy)]
pub struct ConsistencyConfig {
    pub default: Consistency,
    pub max_replica_lag: Option<Duration>,
}

/// `[routing]`, validated.
#[derive(Debug, Clone, Copy)]
pub struct Routing {
    pub balance: Balance,
    pub primary_in_read_pool: bool,
    pub call: RouteTo,
    pub optimistic_transactions: bool,
}

/// A routing rule with its target resolved.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name, or `rules[i]`.
    pub name: String,
    pub user: Option<String>,
    pub schema: Option<String>,
    pub table: Option<TableMatch>,
    pub class: RuleClass,
    pub target: RuleTarget,
}

/// How a rule matches table names.
#[derive(Debug, Clone)]
pub enum TableMatch {
    Glob(String),
    Regex(regex::Regex),
}

impl TableMatch {
    pub fn matches(&self, table: &str) -> bool {
        match self {
            TableMatch::Glob(g) => glob_match(g.as_bytes(), table.as_bytes()),
            TableMatch::Regex(r) => r.is_match(table),
        }
    }
}

/// `*` matches any run of characters, `?` one character; ASCII case-insensitive, as table
/// names are on most servers.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Where a rule sends a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleTarget {
    Primary,
    Replica,
    /// Another cluster (index into `Config::clusters`), with the usual read/write split there.
    Cluster(usize),
    /// One server: `(cluster index, server index)`.
    Backend(usize, usize),
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub address: SocketAddr,
    /// A Unix socket clients may connect to as well.
    pub socket: Option<PathBuf>,
    pub max_connections: u32,
    pub max_allowed_packet: usize,
    pub server_version: Option<String>,
    pub local_infile: bool,
    /// Async runtime worker threads; `None`: one per CPU core. One thread saves cross-thread
    /// wake-ups per statement (measured: point select at 1 client 0.74 of direct instead of
    /// 0.67) and caps the proxy at one core.
    pub worker_threads: Option<usize>,
    /// Each worker thread pinned to one CPU, in turn. The kernel otherwise moves the workers
    /// between CPUs about 1.5 times per statement at one client (perf stat); pinned, point
    /// select at 8 clients went from 0.33 to 0.40 of direct (README, Benchmarks).
    pub pin_worker_threads: bool,
    pub runtime: RuntimeModel,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub handshake: Duration,
    pub shutdown_grace: Duration,
}

/// A client account with the hashes it can be verified against.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub native_password: Option<[u8; 20]>,
    pub caching_sha2_password: Option<[u8; 32]>,
    pub cluster: String,
    pub route: UserRoute,
    pub consistency: Option<Consistency>,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub backend_user: String,
    pub backend_password: String,
    pub monitor_user: String,
    pub monitor_password: String,
    pub replication_user: String,
    pub replication_password: String,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    /// `host:port`: the server's identity, for replication and failover.
    pub address: String,
    /// Its Unix socket, for Lagless's own connections (see [`Server::dial`]).
    pub socket: Option<String>,
    pub role: Role,
    pub weight: u32,
    pub priority: i32,
    pub no_failover: bool,
}

impl Config {
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

impl Server {
    /// Where Lagless's own connections go: the Unix socket when one is configured, else
    /// `address` (see `lagless_backend::NetStream::connect`).
    pub fn dial(&self) -> &str {
        self.socket.as_deref().unwrap_or(&self.address)
    }
}

impl Cluster {
    /// The configured primary; validation guarantees there is exactly one.
    pub fn primary(&self) -> &Server {
        self.servers
            .iter()
            .find(|s| s.role == Role::Primary)
            .unwrap_or(&self.servers[0])
    }
}

/// Checks everything types cannot.
///
/// # Errors
/// The first problem found, naming its key (e.g. `clusters[0].servers[1].address`).
pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let l = &raw.listener;
    let address: SocketAddr = l.address.parse().map_err(|_| {
        invalid(
            "listener.address",
            format!("`{}` is not host:port with an IP address", l.address),
        )
    })?;
    if let Some(path) = &l.socket {
        check_socket_path(path).map_err(|p| invalid("listener.socket", p))?;
    }
    if l.max_connections == 0 {
        return Err(invalid("listener.max_connections", "must be at least 1"));
    }
    if !(1024..=(1 << 30)).contains(&l.max_allowed_packet) {
        return Err(invalid(
            "listener.max_allowed_packet",
            "must be between 1024 and 1073741824 bytes",
        ));
    }
    if l.worker_threads.is_some_and(|n| !(1..=1024).contains(&n)) {
        return Err(invalid(
            "listener.worker_threads",
            "must be between 1 and 1024 (leave it out for one per CPU core)",
        ));
    }
    let t = &raw.timeouts;
    for (key, v) in [
        ("timeouts.connect_ms", t.connect_ms),
        ("timeouts.handshake_ms", t.handshake_ms),
    ] {
        if v == 0 {
            return Err(invalid(key, "must be greater than 0"));
        }
    }
    let clusters = raw
        .clusters
        .iter()
        .enumerate()
        .map(|(i, c)| validate_cluster(i, c))
        .collect::<Result<Vec<_>, _>>()?;
    if clusters.is_empty() {
        return Err(invalid(
            "clusters",
            "at least one [[clusters]] entry is required",
        ));
    }
    unique(clusters.iter().map(|c| c.name.as_str()), "clusters", "name")?;
    if raw.users.is_empty() {
        return Err(invalid("users", "at least one [[users]] entry is required"));
    }
    let users = raw
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| validate_user(i, u, &clusters))
        .collect::<Result<Vec<_>, _>>()?;
    unique(users.iter().map(|u| u.name.as_str()), "users", "name")?;
    let rules = raw
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| validate_rule(i, r, &clusters))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Config {
        listener: Listener {
            address,
            socket: l.socket.as_deref().map(PathBuf::from),
            max_connections: l.max_connections,
            max_allowed_packet: l.max_allowed_packet as usize,
            server_version: l.server_version.clone(),
            local_infile: l.local_infile,
            worker_threads: l.worker_threads.map(|n| n as usize),
            pin_worker_threads: l.pin_worker_threads,
            runtime: l.runtime,
        },
        timeouts: Timeouts {
            connect: Duration::from_millis(t.connect_ms),
            handshake: Duration::from_millis(t.handshake_ms),
            shutdown_grace: Duration::from_millis(t.shutdown_grace_ms),
        },
        users,
        clusters,
        routing: Routing {
            balance: raw.routing.balance,
            primary_in_read_pool: raw.routing.primary_in_read_pool,
            call: raw.routing.call,
            optimistic_transactions: raw.routing.optimistic_transactions,
        },
        rules,
        failover: Failover {
            enabled: raw.failover.enabled,
            failcount: raw.failover.failcount.max(1),
            hold_writes: Duration::from_millis(raw.failover.hold_writes_ms),
            apply_timeout: positive_ms("failover.apply_timeout_ms", raw.failover.apply_timeout_ms)?,
            replica_heartbeat: (raw.failover.replica_heartbeat_ms > 0)
                .then(|| Duration::from_millis(raw.failover.replica_heartbeat_ms)),
            lock: raw.failover.lock,
            transaction_replay: raw.failover.transaction_replay,
        },
        pool: Pool {
            multiplex: raw.pool.multiplex,
            max_per_server: (raw.pool.max_per_server > 0).then_some(raw.pool.max_per_server),
            max_idle_per_server: raw.pool.max_idle_per_server,
            wait_timeout: positive_ms("pool.wait_timeout_ms", raw.pool.wait_timeout_ms)?,
            hold: Duration::from_millis(raw.pool.hold_ms),
        },
        admin: match raw.admin.enabled {
            false => None,
            true => Some(raw.admin.address.parse().map_err(|_| {
                invalid(
                    "admin.address",
                    format!(
                        "`{}` is not host:port with an IP address",
                        raw.admin.address
                    ),
                )
            })?),
        },
        monitor: Monitor {
            enabled: raw.monitor.enabled,
            interval: positive_ms("monitor.interval_ms", raw.monitor.interval_ms)?,
            timeout: positive_ms("monitor.timeout_ms", raw.monitor.timeout_ms)?,
            heartbeat_schema: raw
                .monitor
                .heartbeat
                .then(|| raw.monitor.heartbeat_schema.clone()),
            binlog_streaming: raw.monitor.binlog_streaming,
            binlog_server_id: (raw.monitor.binlog_server_id > 0)
                .then_some(raw.monitor.binlog_server_id),
            binlog_stream_primary: raw.monitor.binlog_stream_primary,
        },
        consistency: ConsistencyConfig {
            default: raw
                .consistency
                .default
                .parse()
                .map_err(|e: crate::ModeError| invalid("consistency.default", e.to_string()))?,
            max_replica_lag: (raw.consistency.max_replica_lag_s > 0)
                .then(|| Duration::from_secs(raw.consistency.max_replica_lag_s)),
        },
    })
}

fn positive_ms(key: &str, ms: u64) -> Result<Duration, ConfigError> {
    if ms == 0 {
        return Err(invalid(key, "must be greater than 0"));
    }
    Ok(Duration::from_millis(ms))
}

fn validate_rule(i: usize, r: &RawRule, clusters: &[Cluster]) -> Result<Rule, ConfigError> {
    let key = format!("rules[{i}]");
    let table = match (&r.table, &r.table_regex) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{key}.table_regex"),
                "give either table or table_regex, not both",
            ))
        }
        (Some(g), None) => Some(TableMatch::Glob(g.clone())),
        (None, Some(re)) => {
            Some(TableMatch::Regex(regex::Regex::new(re).map_err(|e| {
                invalid(format!("{key}.table_regex"), e.to_string())
            })?))
        }
        (None, None) => None,
    };
    let target =
        parse_target(&r.target, clusters).map_err(|p| invalid(format!("{key}.target"), p))?;
    Ok(Rule {
        name: r.name.clone().unwrap_or(key),
        user: r.user.clone(),
        schema: r.schema.clone(),
        table,
        class: r.class.unwrap_or(RuleClass::Any),
        target,
    })
}

fn parse_target(t: &str, clusters: &[Cluster]) -> Result<RuleTarget, String> {
    match t {
        "primary" => return Ok(RuleTarget::Primary),
        "replica" => return Ok(RuleTarget::Replica),
        _ => {}
    }
    if let Some(name) = t.strip_prefix("cluster:") {
        return clusters
            .iter()
            .position(|c| c.name == name)
            .map(RuleTarget::Cluster)
            .ok_or_else(|| format!("no cluster is named `{name}`"));
    }
    if let Some(name) = t.strip_prefix("backend:") {
        for (ci, c) in clusters.iter().enumerate() {
            if let Some(si) = c.servers.iter().position(|s| s.name == name) {
                return Ok(RuleTarget::Backend(ci, si));
            }
        }
        return Err(format!("no server is named `{name}`"));
    }
    Err(format!(
        "`{t}` is not primary, replica, cluster:NAME or backend:NAME"
    ))
}

fn unique<'a>(
    names: impl Iterator<Item = &'a str>,
    table: &str,
    field: &str,
) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, n) in names.enumerate() {
        if !seen.insert(n) {
            return Err(invalid(
                format!("{table}[{i}].{field}"),
                format!("`{n}` is used twice"),
            ));
        }
    }
    Ok(())
}

fn validate_cluster(i: usize, c: &RawCluster) -> Result<Cluster, ConfigError> {
    let key = format!("clusters[{i}]");
    if c.name.is_empty() {
        return Err(invalid(format!("{key}.name"), "must not be empty"));
    }
    if c.user.is_empty() {
        return Err(invalid(format!("{key}.user"), "must not be empty"));
    }
    let backend_password = match (&c.password, &c.password_env) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{key}.password_env"),
                "give either password or password_env, not both",
            ))
        }
        (Some(p), None) => p.clone(),
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            invalid(
                format!("{key}.password_env"),
                format!("environment variable `{var}` is not set"),
            )
        })?,
        (None, None) => String::new(),
    };
    if c.servers.is_empty() {
        return Err(invalid(
            format!("{key}.servers"),
            "a cluster needs at least one server",
        ));
    }
    let mut servers = Vec::with_capacity(c.servers.len());
    for (j, s) in c.servers.iter().enumerate() {
        let skey = format!("{key}.servers[{j}]");
        if s.name.is_empty() {
            return Err(invalid(format!("{skey}.name"), "must not be empty"));
        }
        check_host_port(&s.address).map_err(|p| invalid(format!("{skey}.address"), p))?;
        if let Some(path) = &s.socket {
            check_socket_path(path).map_err(|p| invalid(format!("{skey}.socket"), p))?;
        }
        if s.weight == 0 {
            return Err(invalid(format!("{skey}.weight"), "must be at least 1"));
        }
        servers.push(Server {
            name: s.name.clone(),
            address: s.address.clone(),
            socket: s.socket.clone(),
            role: s.role,
            weight: s.weight,
            priority: s.priority,
            no_failover: s.no_failover,
        });
    }
    unique(
        servers.iter().map(|s| s.name.as_str()),
        &format!("{key}.servers"),
        "name",
    )?;
    let primaries = servers.iter().filter(|s| s.role == Role::Primary).count();
    if primaries != 1 {
        return Err(invalid(
            format!("{key}.servers"),
            format!("exactly one server must have role = \"primary\" (found {primaries})"),
        ));
    }
    Ok(Cluster {
        name: c.name.clone(),
        backend_user: c.user.clone(),
        replication_user: c.replication_user.clone().unwrap_or_else(|| "repl".into()),
        replication_password: c.replication_password.clone().unwrap_or_default(),
        monitor_user: c.monitor_user.clone().unwrap_or_else(|| c.user.clone()),
        monitor_password: c
            .monitor_password
            .clone()
            .unwrap_or_else(|| backend_password.clone()),
        backend_password,
        servers,
    })
}

/// An absolute path that fits `sun_path` (108 bytes with its NUL).
fn check_socket_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` is not an absolute path"));
    }
    if path.len() > 107 {
        return Err(format!(
            "`{path}` is {} bytes long; a Unix socket path holds at most 107",
            path.len()
        ));
    }
    Ok(())
}

fn check_host_port(address: &str) -> Result<(), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("`{address}` is not host:port"))?;
    if host.is_empty() {
        return Err(format!("`{address}` has no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("`{address}` has no valid port (1-65535)")),
    }
}

fn validate_user(i: usize, u: &RawUser, clusters: &[Cluster]) -> Result<User, ConfigError> {
    let key = format!("users[{i}]");
    if u.name.is_empty() {
        return Err(invalid(format!("{key}.name"), "must not be empty"));
    }
    let native_password = u
        .native_password
        .as_deref()
        .map(|h| parse_native_hash(h).map_err(|p| invalid(format!("{key}.native_password"), p)))
        .transpose()?;
    let caching_sha2_password = u
        .caching_sha2_password
        .as_deref()
        .map(|h| parse_hex::<32>(h).map_err(|p| invalid(format!("{key}.caching_sha2_password"), p)))
        .transpose()?;
    if native_password.is_none() && caching_sha2_password.is_none() {
        return Err(invalid(
            key,
            "needs native_password and/or caching_sha2_password (run `lagless passwd` to make them)",
        ));
    }
    let cluster = match &u.cluster {
        Some(name) => {
            if !clusters.iter().any(|c| &c.name == name) {
                return Err(invalid(
                    format!("{key}.cluster"),
                    format!("no cluster is named `{name}`"),
                ));
            }
            name.clone()
        }
        None => clusters[0].name.clone(),
    };
    Ok(User {
        name: u.name.clone(),
        native_password,
        caching_sha2_password,
        cluster,
        route: u.route,
        consistency: u
            .consistency
            .as_deref()
            .map(|m| {
                m.parse().map_err(|e: crate::ModeError| {
                    invalid(format!("{key}.consistency"), e.to_string())
                })
            })
            .transpose()?,
    })
}

fn parse_native_hash(h: &str) -> Result<[u8; 20], String> {
    let hex = h.strip_prefix('*').ok_or_else(|| {
        "must start with `*` followed by 40 hex digits (see `lagless passwd`)".to_string()
    })?;
    parse_hex::<20>(hex)
}

fn parse_hex<const N: usize>(h: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(h).map_err(|_| format!("`{h}` is not hexadecimal"))?;
    bytes
        .try_into()
        .map_err(|_| format!("must be {} hex digits", N * 2))
}

#[cfg(test)]
mod tests;
