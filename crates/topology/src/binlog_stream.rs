//! GTID streaming: the proxy subscribes to each server's binary log as a replication client
//! and learns, within milliseconds, which GTIDs the server has committed, between the
//! monitor's polls.
//!
//! Per server, one task keeps a dump connection (and, to confirm what the dump announces, a
//! control connection):
//!
//! 1. log in with the monitor account, read `@@version`, `@@log_bin`, `@@binlog_checksum`,
//!    `@@gtid_binlog_pos`, `@@gtid_current_pos`, `@@server_id`;
//! 2. `SET @master_binlog_checksum = @@global.binlog_checksum` (events then carry CRC32
//!    trailers, checked on the events that are read), `@mariadb_slave_capability = 4` (real
//!    GTID events instead of dummies), `@slave_connect_state` = the server's
//!    `gtid_binlog_pos` (the dump starts at the end of the binlog), `@master_heartbeat_period`;
//! 3. `COM_BINLOG_DUMP` with a server id of its own ([`StreamConfig::server_id`]), not
//!    registered (`SHOW SLAVE HOSTS` does not list it);
//! 4. read events: GTID events (0xA2: sequence u64 LE and domain u32 LE in the body, server id
//!    from the 19-byte header) and GTID lists (0xA3) move the *streamed* position; large row
//!    events are skipped as their bytes arrive.
//!
//! **Streamed is not yet visible.** MariaDB writes a transaction to the binlog, and wakes the
//! dump threads, before the engine commit makes it visible to other sessions (on a replica the
//! SQL thread updates `gtid_slave_pos` only after the commit). A read routed on a streamed GTID
//! alone could miss the write by microseconds (measured: 20 stale reads in 10,000 with
//! streamed GTIDs trusted as they arrive, see the README). So by default
//! ([`StreamConfig::confirm`]) new GTIDs are confirmed with `SELECT @@global.gtid_current_pos`
//! on the control connection (what the monitor polls, updated after the commit on replicas):
//! that answer is the published *executed* position. The first confirmation after a quiet
//! spell is sent at once; under a steady write load they are at least 5 ms apart, so the cost
//! on the server is bounded whatever the write rate. While the answer lags the stream it is
//! asked again 1 ms later, then less often.
//!
//! Routing uses executed GTIDs of replicas only, so a writable server (a primary) gets no
//! confirmations and publishes no executed GTIDs. Its stream gives where each transaction ends
//! in its binlog instead ([`groups::GroupTracker`]), for the `position` and `pos_wait` modes;
//! with [`StreamConfig::primaries`] off it is not streamed at all ([`StreamState::Idle`]), and
//! a replica likewise while [`StreamConfig::replicas`] is off.
//! `@@read_only` is checked every second, so a promoted or demoted server switches over.
//!
//! A server that refuses (no REPLICATION SLAVE privilege, binary log off, MySQL) is reported as
//! [`StreamState::Refused`], logged once, and tried again every 30 s; lost connections are
//! retried with backoff (100 ms doubling to 5 s). Meanwhile the monitor's polls go on as
//! before: routing uses whichever position is newer.
//!
//! The account needs `REPLICATION SLAVE` (MariaDB 10.5+: it also allows `COM_BINLOG_DUMP`
//! alone; the monitor's `BINLOG MONITOR` and `REPLICA MONITOR` are not enough).

pub mod events;
pub mod groups;

use std::sync::Arc;
use std::time::Duration;

use lagless_backend::{login, BackendError, Login, LoginOptions};
use lagless_protocol::ok_err::ErrPacket;
use lagless_routing::consistency::StreamedBinlog;
use lagless_routing::gtid::MariaPos;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use crate::config::MonitoredServer;
use crate::parse::parse_version;
use crate::types::Flavour;
use events::{parse_event, Event, Frame, Framer, StreamBuf, CHECKSUM_OFF};
use groups::GroupTracker;

/// MySQL error codes that mean "this account or server will not stream".
const ER_SPECIFIC_ACCESS_DENIED: u16 = 1227;
const ER_ACCESS_DENIED: u16 = 1045;
const ER_DBACCESS_DENIED: u16 = 1044;
/// `COM_BINLOG_DUMP`.
const COM_BINLOG_DUMP: u8 = 0x12;

/// How often a refused server is tried again.
const REFUSED_RETRY: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Bound on each set-up statement and on each confirmation query.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Under a steady write load, confirmations are at least this far apart (one right away after
/// a quiet spell): the stream's cost on the server stays bounded whatever the write rate.
const CONFIRM_GAP: Duration = Duration::from_millis(5);
/// How often a writable server is asked whether it became read-only (a replica), and the
/// other way round.
const ROLE_CHECK: Duration = Duration::from_secs(1);
/// Confirmation retries while the committed position lags the streamed one.
const CONFIRM_RETRY_MIN: Duration = Duration::from_millis(1);
const CONFIRM_RETRY_MAX: Duration = Duration::from_millis(100);
/// After this many confirmations in a row without reaching the streamed position, wait for the
/// next event (a domain the committed position never shows would otherwise be asked forever).
const CONFIRM_RETRIES: u32 = 12;

/// What to stream from, as whom.
#[derive(Clone)]
pub struct StreamConfig {
    pub servers: Vec<MonitoredServer>,
    /// Needs REPLICATION SLAVE (see the module documentation).
    pub user: String,
    pub password: String,
    pub connect_timeout: Duration,
    /// The replication server id the dump connections use. It must differ from every server's
    /// `server_id` and from any other replication client's (MariaDB ends an older dump
    /// connection with the same id): [`StreamConfig::new`] picks one at random in
    /// 0x4C000000..=0x4CFFFFFF, so two proxies in front of the same servers do not collide.
    pub server_id: u32,
    /// `@master_heartbeat_period`: the server sends a heartbeat after this much silence; a
    /// connection silent for three periods is dropped and reconnected.
    pub heartbeat: Duration,
    /// Publish only positions confirmed committed (see the module documentation). Off: the
    /// streamed position is published as it arrives (can be stale by microseconds; kept for
    /// measurement).
    pub confirm: bool,
    /// Whether writable servers (primaries) are streamed too, for where each transaction
    /// ends in their binlog ([`StreamedServer::binlog`]): the `position` modes then learn a
    /// write's binlog position within milliseconds. Until it is wanted a primary is not
    /// streamed (no dump thread on it); it can be wanted later, at run time.
    pub primaries: Arc<StreamDemand>,
    /// Whether read-only servers (replicas) are streamed, for their executed GTIDs. Until it
    /// is wanted a replica is not streamed; it can be wanted later, at run time.
    pub replicas: Arc<StreamDemand>,
}

/// Whether one kind of server's stream is wanted; once wanted, for good. A stream waiting
/// idle starts when [`StreamDemand::want`] is called.
#[derive(Debug, Default)]
pub struct StreamDemand {
    wanted: std::sync::atomic::AtomicBool,
    changed: tokio::sync::Notify,
}

impl StreamDemand {
    pub fn new(wanted: bool) -> Self {
        StreamDemand {
            wanted: wanted.into(),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Cheap once wanted: a load, no read-modify-write (called on every statement of a
    /// session in a mode that wants it).
    pub fn want(&self) {
        if !self.wanted() && !self.wanted.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.changed.notify_waiters();
        }
    }

    pub fn wanted(&self) -> bool {
        self.wanted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl StreamConfig {
    pub fn new(
        servers: Vec<MonitoredServer>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        StreamConfig {
            servers,
            user: user.into(),
            password: password.into(),
            connect_timeout: Duration::from_secs(1),
            server_id: random_server_id(),
            heartbeat: Duration::from_secs(1),
            confirm: true,
            primaries: Arc::new(StreamDemand::new(true)),
            replicas: Arc::new(StreamDemand::new(true)),
        }
    }
}

impl std::fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("StreamConfig")
            .field("servers", &self.servers)
            .field("user", &self.user)
            .field("server_id", &self.server_id)
            .field("heartbeat", &self.heartbeat)
            .field("confirm", &self.confirm)
            .field("primaries", &self.primaries)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

/// A server id in 0x4C000000..=0x4CFFFFFF ("L"), different per process and start.
pub fn random_server_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    0x4c00_0000 | (h.finish() as u32 & 0x00ff_ffff)
}

/// The state of one server's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// Not started yet, or connecting.
    Connecting,
    /// Events are arriving.
    Streaming,
    /// The server or account will not stream (the reason); polling only, tried again later.
    Refused(String),
    /// The connection failed or was lost (the reason); reconnecting with backoff.
    Retrying(String),
    /// Not streamed (the reason): a writable server, a primary, while its binlog positions
    /// are not wanted ([`StreamConfig::primaries`]), or a replica while its GTIDs are not
    /// ([`StreamConfig::replicas`]); streamed once they are, or once its role changes
    /// (checked every second).
    Idle(String),
}

impl StreamState {
    /// A short name: `connecting`, `streaming`, `refused`, `retrying`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Streaming => "streaming",
            Self::Refused(_) => "refused",
            Self::Retrying(_) => "retrying",
            Self::Idle(_) => "idle",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Refused(r) | Self::Retrying(r) | Self::Idle(r) => Some(r),
            _ => None,
        }
    }
}

/// What one server's stream knows.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedServer {
    pub cluster: usize,
    pub server: usize,
    pub name: String,
    pub state: StreamState,
    /// GTIDs the server has committed (confirmed, or streamed when confirmation is off); `None`
    /// unless streaming.
    pub executed: Option<MariaPos>,
    /// The newest GTIDs its binlog sent; `None` unless streaming.
    pub streamed: Option<MariaPos>,
    /// A writable server's: where the last transaction its binlog sent ends (`None` on a
    /// read-only server, or until one ended since the stream started).
    pub binlog: Option<StreamedBinlog>,
    /// GTID events received since the proxy started.
    pub gtid_events: u64,
    /// When `executed` last moved (or the state changed).
    pub updated_at: Instant,
}

/// Starts one stream task per server. The receiver holds one entry per configured server, in
/// order; it changes when a server's state or executed position changes (a `watch` channel:
/// a slow reader sees only the latest). Everything stops with `shutdown`.
pub fn spawn_streams(
    config: StreamConfig,
    shutdown: CancellationToken,
) -> (watch::Receiver<Vec<StreamedServer>>, JoinHandle<()>) {
    let now = Instant::now();
    let initial = config
        .servers
        .iter()
        .map(|s| StreamedServer {
            cluster: s.cluster,
            server: s.server,
            name: s.name.clone(),
            state: StreamState::Connecting,
            executed: None,
            streamed: None,
            binlog: None,
            gtid_events: 0,
            updated_at: now,
        })
        .collect();
    let (tx, rx) = watch::channel(initial);
    let tx = Arc::new(tx);
    let config = Arc::new(config);
    let task = tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        for i in 0..config.servers.len() {
            let stream = ServerStream::new(i, config.clone(), tx.clone());
            tasks.spawn(stream.run(shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
    });
    (rx, task)
}

/// Why a stream session ended.
#[derive(Debug)]
enum Ended {
    Refused(String),
    Lost(String),
    /// The server became read-only or writable, or a primary's positions became wanted:
    /// start over at once.
    Role,
}

impl Ended {
    fn from_backend(what: &str, e: &BackendError) -> Self {
        match e {
            BackendError::Server { code, .. }
                if matches!(
                    *code,
                    ER_SPECIFIC_ACCESS_DENIED | ER_ACCESS_DENIED | ER_DBACCESS_DENIED
                ) =>
            {
                Ended::Refused(format!("{what}: {e}"))
            }
            _ => Ended::Lost(format!("{what}: {e}")),
        }
    }
}

struct ServerStream {
    index: usize,
    config: Arc<StreamConfig>,
    tx: Arc<watch::Sender<Vec<StreamedServer>>>,
    options: LoginOptions,
    gtid_events: u64,
}

impl ServerStream {
    fn new(
        index: usize,
        config: Arc<StreamConfig>,
        tx: Arc<watch::Sender<Vec<StreamedServer>>>,
    ) -> Self {
        let server = &config.servers[index];
        let options = crate::login::control_login(
            server.dial(),
            &config.user,
            &config.password,
            "lagless-binlog-stream",
            config.connect_timeout,
            1 << 30,
        );
        ServerStream {
            index,
            config,
            tx,
            options,
            gtid_events: 0,
        }
    }

    fn name(&self) -> &str {
        &self.config.servers[self.index].name
    }

    /// While streaming: a replica's executed GTIDs; a primary's binlog position instead
    /// (routing reads replicas' executed GTIDs only).
    fn publish_streaming(
        &self,
        executed: &MariaPos,
        streamed: &MariaPos,
        groups: Option<&GroupTracker>,
    ) {
        match groups {
            Some(g) => self.publish(StreamState::Streaming, None, Some(streamed), g.position()),
            None => self.publish(StreamState::Streaming, Some(executed), Some(streamed), None),
        }
    }

    fn publish(
        &self,
        state: StreamState,
        executed: Option<&MariaPos>,
        streamed: Option<&MariaPos>,
        binlog: Option<StreamedBinlog>,
    ) {
        let i = self.index;
        let events = self.gtid_events;
        self.tx.send_if_modified(|v| {
            let Some(s) = v.get_mut(i) else {
                return false;
            };
            let changed = s.state != state
                || s.executed.as_ref() != executed
                || s.streamed.as_ref() != streamed
                || s.binlog != binlog;
            s.gtid_events = events;
            if changed {
                s.state = state;
                s.executed = executed.cloned();
                s.streamed = streamed.cloned();
                s.binlog = binlog;
                s.updated_at = Instant::now();
            }
            changed
        });
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        let mut logged: Option<String> = None;
        loop {
            let started = Instant::now();
            let ended = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = self.session() => e,
            };
            let wait = match ended {
                Ended::Refused(reason) => {
                    if logged.as_deref() != Some(reason.as_str()) {
                        tracing::warn!(server = %self.name(), reason = %reason,
                            "binlog streaming refused; this server's GTIDs come from polling only");
                        logged = Some(reason.clone());
                    }
                    self.publish(StreamState::Refused(reason), None, None, None);
                    REFUSED_RETRY
                }
                Ended::Role => {
                    backoff = BACKOFF_MIN;
                    BACKOFF_MIN
                }
                Ended::Lost(reason) => {
                    if started.elapsed() > BACKOFF_MAX {
                        backoff = BACKOFF_MIN; // it streamed for a while: reconnect soon
                    }
                    if logged.as_deref() != Some(reason.as_str()) {
                        tracing::info!(server = %self.name(), reason = %reason,
                            retry_in = ?backoff, "binlog stream lost; polling meanwhile");
                        logged = Some(reason.clone());
                    }
                    self.publish(StreamState::Retrying(reason), None, None, None);
                    let w = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    w
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                () = sleep(wait) => {}
            }
        }
    }

    /// One connection's life: set up, dump, read until something fails.
    async fn session(&mut self) -> Ended {
        let mut dump = match login(&self.options).await {
            Ok(l) => l,
            Err(e) => return Ended::from_backend("login", &e),
        };
        let vars = match timeout(
            STATEMENT_TIMEOUT,
            dump.query_rows(
                "SELECT @@version, @@global.log_bin, @@global.binlog_checksum, \
                 @@global.gtid_binlog_pos, @@global.gtid_current_pos, @@global.server_id, \
                 @@global.read_only",
            ),
        )
        .await
        {
            Err(_) => return Ended::Lost("reading the binlog settings timed out".into()),
            Ok(Err(e)) => return Ended::from_backend("reading the binlog settings", &e),
            Ok(Ok(r)) => r,
        };
        let row = vars.rows.first().cloned().unwrap_or_default();
        let col = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        if parse_version(&col(0)).flavour == Flavour::MySql {
            return Ended::Refused(
                "not MariaDB (MySQL binlog streaming is not implemented)".into(),
            );
        }
        if !matches!(col(1).as_str(), "1" | "ON") {
            return Ended::Refused("binary log is off (log_bin)".into());
        }
        let checksum = !col(2).eq_ignore_ascii_case("NONE");
        // A writable server (a primary) is streamed only for where its transactions end in
        // its binlog (the position modes); routing uses executed GTIDs of replicas only, so
        // its GTIDs are not confirmed.
        let writable = !matches!(col(6).as_str(), "1" | "ON");
        let demand = if writable {
            self.config.primaries.clone()
        } else {
            self.config.replicas.clone()
        };
        if !demand.wanted() {
            let why = if writable {
                "writable (a primary): not streamed until a position mode is used"
            } else {
                "not streamed until a session uses a GTID mode (gtid, gtid_wait, global)"
            };
            self.publish(StreamState::Idle(why.into()), None, None, None);
            loop {
                let wanted = demand.changed.notified();
                tokio::pin!(wanted);
                wanted.as_mut().enable();
                if demand.wanted() {
                    return Ended::Role;
                }
                tokio::select! {
                    () = sleep(ROLE_CHECK) => {}
                    () = wanted => return Ended::Role,
                }
                match read_only(&mut dump).await {
                    // The role changed: start over as the other kind.
                    Ok(read_only) if read_only == writable => return Ended::Role,
                    Ok(_) => {}
                    Err(e) => return e,
                }
            }
        }
        let binlog_pos = col(3);
        if col(5).parse::<u32>().ok() == Some(self.config.server_id) {
            return Ended::Refused(format!(
                "the server's server_id is {}, the stream's own id: set [monitor] binlog_server_id",
                self.config.server_id
            ));
        }
        let (Ok(mut streamed), Ok(mut executed)) =
            (MariaPos::parse(&binlog_pos), MariaPos::parse(&col(4)))
        else {
            return Ended::Lost(format!("unreadable GTID positions {binlog_pos:?}"));
        };
        let heartbeat_ns = self.config.heartbeat.as_nanos().max(1_000_000);
        // `streamed` is re-rendered from the parsed position, so only digits, '-' and ','
        // reach the statement.
        let set = format!(
            "SET @master_binlog_checksum = @@global.binlog_checksum, \
             @mariadb_slave_capability = 4, @slave_connect_state = '{streamed}', \
             @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0, \
             @master_heartbeat_period = {heartbeat_ns}"
        );
        match timeout(STATEMENT_TIMEOUT, dump.query_ok(&set)).await {
            Err(_) => return Ended::Lost("SET for the binlog dump timed out".into()),
            Ok(Err(e)) => return Ended::from_backend("SET for the binlog dump", &e),
            Ok(Ok(_)) => {}
        }
        // A primary's stream also needs the control connection: for the role check.
        let confirming = self.config.confirm && !writable;
        let mut control = if confirming || writable {
            match login(&self.options).await {
                Ok(l) => Some(l),
                Err(e) => return Ended::from_backend("login (control connection)", &e),
            }
        } else {
            None
        };
        let mut cmd = Vec::with_capacity(11);
        cmd.push(COM_BINLOG_DUMP);
        cmd.extend_from_slice(&4u32.to_le_bytes()); // position: ignored with a GTID start
        cmd.extend_from_slice(&0u16.to_le_bytes()); // flags: blocking
        cmd.extend_from_slice(&self.config.server_id.to_le_bytes());
        // file name: empty (the GTID connect state says where to start)
        if let Err(e) = lagless_backend::io::write_packet(&mut dump.stream, 0, &cmd).await {
            return Ended::from_backend("COM_BINLOG_DUMP", &e);
        }
        let silence = self.config.heartbeat * 3 + Duration::from_secs(1);
        let mut buf = StreamBuf::default();
        buf.data.extend_from_slice(&dump.read_buf);
        let mut framer = Framer::default();
        let mut checksum = checksum;
        let mut streaming = false;
        let mut deadline = Instant::now() + silence;
        let mut retry_gap = CONFIRM_RETRY_MIN;
        let mut retries = 0u32;
        // New GTIDs streamed and not confirmed yet.
        let mut pending = false;
        let mut next_confirm = Instant::now();
        let mut last_confirm = Instant::now();
        let mut next_role_check = Instant::now() + ROLE_CHECK;
        if !confirming {
            executed.merge_max(&streamed);
        }
        let mut groups = writable.then(|| GroupTracker::new(streamed.clone()));
        loop {
            let mut moved = false;
            while let Some(frame) = framer.next(&mut buf) {
                match frame {
                    Frame::Err(p) => {
                        let e = match ErrPacket::parse(&p) {
                            Ok(e) => BackendError::from(e),
                            Err(e) => BackendError::Protocol(e),
                        };
                        return Ended::from_backend("binlog dump", &e);
                    }
                    Frame::Eof => return Ended::Lost("the server ended the binlog dump".into()),
                    Frame::Skipped(_) => {}
                    Frame::Event(ev) => {
                        if !streaming {
                            streaming = true;
                            tracing::info!(server = %self.name(), server_id = self.config.server_id,
                                "binlog streaming");
                            self.publish_streaming(&executed, &streamed, groups.as_ref());
                        }
                        let (header, event) = match parse_event(&ev, checksum) {
                            Err(e) => return Ended::Lost(e.to_string()),
                            Ok(parsed) => parsed,
                        };
                        if let Some(g) = groups.as_mut() {
                            moved |= g.event(&header, &event);
                        }
                        match event {
                            Event::Gtid { gtid, .. } => {
                                self.gtid_events += 1;
                                moved |= streamed.insert(gtid);
                            }
                            Event::GtidList(list) => {
                                for g in list {
                                    moved |= streamed.insert(g);
                                }
                            }
                            Event::FormatDescription { checksum: alg } => {
                                checksum = alg != CHECKSUM_OFF;
                            }
                            _ => {}
                        }
                    }
                }
            }
            if moved && confirming {
                pending = true;
                retries = 0;
                retry_gap = CONFIRM_RETRY_MIN;
            }
            let mut publish = false;
            if let Some(control) = control.as_mut() {
                if Instant::now() >= next_role_check {
                    next_role_check = Instant::now() + ROLE_CHECK;
                    match read_only(control).await {
                        // Promoted (a primary now), or demoted (a replica now).
                        Ok(ro) if ro == writable => return Ended::Role,
                        Ok(_) => {}
                        Err(e) => return e,
                    }
                }
                if pending && Instant::now() >= next_confirm {
                    // After a quiet spell a write is chased closely (it is committed
                    // microseconds after it reached the binlog); under a steady load the
                    // newest streamed GTID is nearly always still committing, and chasing it
                    // would cost a query per millisecond: confirmations are CONFIRM_GAP apart.
                    let quiet = last_confirm.elapsed() > CONFIRM_GAP * 2;
                    match confirm(control).await {
                        Ok(pos) => executed.merge_max(&pos),
                        Err(e) => return e,
                    }
                    last_confirm = Instant::now();
                    next_confirm = last_confirm + CONFIRM_GAP;
                    if executed.contains(&streamed) || retries >= CONFIRM_RETRIES {
                        pending = false;
                    } else {
                        retries += 1;
                        if quiet || retries > 1 {
                            next_confirm = next_confirm.min(last_confirm + retry_gap);
                            retry_gap = (retry_gap * 2).min(CONFIRM_RETRY_MAX);
                        }
                    }
                    publish = true;
                }
            }
            if moved && !confirming {
                executed.merge_max(&streamed);
                publish = true;
            }
            if publish && streaming {
                self.publish_streaming(&executed, &streamed, groups.as_ref());
            }
            buf.compact();
            if buf.data.capacity() - buf.data.len() < 8 * 1024 {
                buf.data.reserve(64 * 1024);
            }
            let mut wake = deadline;
            if control.is_some() {
                wake = wake.min(next_role_check);
                if pending {
                    wake = wake.min(next_confirm);
                }
            }
            match timeout_at(wake, dump.stream.read_buf(&mut buf.data)).await {
                Err(_) if Instant::now() >= deadline => {
                    return Ended::Lost(format!("no event or heartbeat for {silence:?}"));
                }
                Err(_) => {}
                Ok(Ok(0)) => return Ended::Lost("connection closed by the server".into()),
                Ok(Err(e)) => return Ended::Lost(format!("read: {e}")),
                Ok(Ok(_)) => deadline = Instant::now() + silence,
            }
        }
    }
}

/// `@@global.read_only`: a replica (or a fenced server), not a writable primary.
async fn read_only(control: &mut Login) -> Result<bool, Ended> {
    let v = scalar(control, "SELECT @@global.read_only", "read_only query").await?;
    Ok(matches!(v.as_deref(), Some("1" | "ON")))
}

/// The server's committed GTIDs: `gtid_current_pos`, which on a replica follows
/// `gtid_slave_pos`, updated after the commit (unlike the binlog).
async fn confirm(control: &mut Login) -> Result<MariaPos, Ended> {
    let v = scalar(
        control,
        "SELECT @@global.gtid_current_pos",
        "confirmation query",
    )
    .await?;
    MariaPos::parse(v.as_deref().unwrap_or(""))
        .map_err(|e| Ended::Lost(format!("confirmation query: {e}")))
}

/// The single value `sql` returns on the control connection, within [`STATEMENT_TIMEOUT`];
/// `what` names the query in the error.
async fn scalar(control: &mut Login, sql: &str, what: &str) -> Result<Option<String>, Ended> {
    match timeout(STATEMENT_TIMEOUT, control.query_rows(sql)).await {
        Err(_) => Err(Ended::Lost(format!("{what} timed out"))),
        Ok(Err(e)) => Err(Ended::from_backend(what, &e)),
        Ok(Ok(r)) => Ok(r.scalar().map(str::to_string)),
    }
}

#[cfg(test)]
mod tests;
