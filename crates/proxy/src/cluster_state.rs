//! What the proxy knows about its servers at run time: health (servers that failed are set
//! aside for a while), sessions per replica, and per-server statement counters. Routing reads
//! an immutable [`ClusterView`] snapshot, republished only when health or load changes, so the
//! per-statement path takes no lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use lagless_config::{Balance, Config};
use lagless_routing::balance::Draw;
use lagless_routing::consistency::{BinlogAt, BinlogPos, ReplicaState};
use lagless_routing::gtid::MariaPos;
use lagless_routing::{ClusterView, ServerRef};
use tokio::time::Instant;

use crate::wakers::{WakerSet, WakerSlot};

/// Statement classes counted per server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Read,
    Write,
    Other,
}

/// Run-time facts about one server.
#[derive(Default)]
pub struct ServerStats {
    /// Milliseconds since the proxy started until which the server is set aside (0: healthy).
    down_until_ms: AtomicU64,
    /// The monitor's last probe found it unreachable.
    monitor_down: AtomicBool,
    /// A former primary after a failover: never routed to.
    fenced: AtomicBool,
    /// Drained by an operator: no new reads; sessions using it move at their next statement.
    drained: AtomicBool,
    /// Sessions whose sticky replica this is.
    pub sessions: AtomicU32,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub other: AtomicU64,
    /// Connection or query failures seen.
    pub failures: AtomicU64,
}

pub struct ClusterState {
    view: ArcSwap<ClusterView>,
    servers: Vec<Vec<ServerStats>>,
    balance: Balance,
    any_down: AtomicBool,
    turn: AtomicU64,
    /// The monitor's latest observation of every server, for SHOW LAGLESS REPLICATION.
    observations: std::sync::Mutex<Vec<lagless_topology::ServerObservation>>,
    /// The binlog streams' latest state of every server (empty when streaming is off).
    streams: std::sync::Mutex<Vec<lagless_topology::StreamedServer>>,
    /// Per cluster: a failover is running (writes wait for it).
    failing_over: Vec<AtomicBool>,
    /// Woken when a failover names a new primary (statements waiting on the old one end) and
    /// when the monitor finds a server unreachable (reads waiting on it end). One set for
    /// both; each session joins it once ([`ClusterState::watch_demotions`]), as every
    /// statement waits on it (see `until_demoted`).
    demotions: Arc<WakerSet>,
    /// Woken when a primary's binlog stream publishes where its latest transaction ends
    /// (reads waiting for their write's position, see [`ClusterState::await_write_position`]).
    write_positions: tokio::sync::Notify,
    /// Whether the primaries' binlog streams run (see [`ClusterState::want_primary_positions`]);
    /// `None` with `[monitor] binlog_stream_primary = "off"`.
    pub primary_positions: Option<Arc<lagless_topology::StreamDemand>>,
    /// Whether the replicas' binlog streams run (see [`ClusterState::want_replica_gtids`]);
    /// `None` with `[monitor] binlog_streaming = false` (no streams at all).
    pub replica_gtids: Option<Arc<lagless_topology::StreamDemand>>,
    /// Per cluster: wakes the monitor for a round at once (see [`ClusterState::suspect`]).
    pub probe_now: Vec<Arc<tokio::sync::Notify>>,
    /// Per cluster: the primary's GTID position at the monitor's previous round.
    previous_primary_pos: std::sync::Mutex<Vec<Option<MariaPos>>>,
    started: Instant,
}

/// Whether one kind of binlog stream runs: `None` when off; wanted from the start when on, or
/// ("auto") when the default mode or a user's `uses` it, else once a session does.
fn stream_demand(
    off: bool,
    on: bool,
    config: &Config,
    uses: impl Fn(lagless_config::Consistency) -> bool,
) -> Option<Arc<lagless_topology::StreamDemand>> {
    if off {
        return None;
    }
    let configured = uses(config.consistency.default)
        || config
            .users
            .iter()
            .any(|u| u.consistency.is_some_and(&uses));
    Some(Arc::new(lagless_topology::StreamDemand::new(
        on || configured,
    )))
}

impl ClusterState {
    pub fn new(config: &Config, now: Instant) -> Self {
        ClusterState {
            view: ArcSwap::from_pointee(ClusterView::from_config(config)),
            servers: config
                .clusters
                .iter()
                .map(|c| c.servers.iter().map(|_| ServerStats::default()).collect())
                .collect(),
            balance: config.routing.balance,
            any_down: AtomicBool::new(false),
            observations: std::sync::Mutex::new(Vec::new()),
            streams: std::sync::Mutex::new(Vec::new()),
            failing_over: config
                .clusters
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
            previous_primary_pos: std::sync::Mutex::new(Vec::new()),
            probe_now: config
                .clusters
                .iter()
                .map(|_| Arc::new(tokio::sync::Notify::new()))
                .collect(),
            demotions: WakerSet::new(),
            write_positions: tokio::sync::Notify::new(),
            primary_positions: {
                use lagless_config::StreamPrimary as S;
                let on = config.monitor.binlog_stream_primary;
                stream_demand(on == S::Off, on == S::On, config, |c| {
                    c.uses_binlog_positions()
                })
            },
            replica_gtids: {
                use lagless_config::BinlogStreaming as S;
                let on = config.monitor.binlog_streaming;
                stream_demand(on == S::Off, on == S::On, config, |c| {
                    c.uses_replica_gtids()
                })
            },
            turn: AtomicU64::new(0),
            started: now,
        }
    }

    /// A client session's connection to `r` broke or could not be opened: the monitor probes
    /// the cluster now, so that a dead primary is confirmed (and failed over) without waiting
    /// for the next round.
    pub fn suspect(&self, r: ServerRef) {
        self.probe_soon(r.cluster);
    }

    /// The monitor probes `cluster` now, or as soon as its minimum gap between rounds allows
    /// (a failure to confirm; replicas' executed positions for a `position` read).
    pub fn probe_soon(&self, cluster: usize) {
        if let Some(n) = self.probe_now.get(cluster) {
            n.notify_one();
        }
    }

    /// The current snapshot; servers whose time aside is over are healthy again.
    pub fn view(&self, now: Instant) -> Arc<ClusterView> {
        if self.any_down.load(Ordering::Relaxed) {
            self.expire(now);
        }
        self.view.load_full()
    }

    pub fn stats(&self, r: ServerRef) -> &ServerStats {
        &self.servers[r.cluster][r.server]
    }

    /// Random bits and a shared turn counter for the replica choice.
    pub fn draw(&self) -> Draw {
        Draw {
            entropy: rand::random(),
            turn: self.turn.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Sets a server aside for `period` after a failure.
    pub fn mark_down(&self, r: ServerRef, period: Duration, now: Instant) {
        let until = self.millis(now) + period.as_millis() as u64;
        let stats = self.stats(r);
        stats.failures.fetch_add(1, Ordering::Relaxed);
        stats.down_until_ms.store(until.max(1), Ordering::Relaxed);
        self.any_down.store(true, Ordering::Relaxed);
        self.publish(|v| v.clusters[r.cluster].servers[r.server].healthy = false);
    }

    fn expire(&self, now: Instant) {
        let t = self.millis(now);
        let mut still_down = false;
        for (ci, c) in self.servers.iter().enumerate() {
            for (si, s) in c.iter().enumerate() {
                let until = s.down_until_ms.load(Ordering::Relaxed);
                if until == 0 {
                    continue;
                }
                if until <= t {
                    s.down_until_ms.store(0, Ordering::Relaxed);
                    let healthy = !s.monitor_down.load(Ordering::Relaxed)
                        && !s.fenced.load(Ordering::Acquire)
                        && !s.drained.load(Ordering::Acquire);
                    self.publish(|v| v.clusters[ci].servers[si].healthy = healthy);
                } else {
                    still_down = true;
                }
            }
        }
        self.any_down.store(still_down, Ordering::Relaxed);
    }

    /// A session starts or stops reading from `r`.
    pub fn sticky(&self, r: ServerRef, joined: bool) {
        let s = &self.stats(r).sessions;
        let n = if joined {
            s.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            s.fetch_sub(1, Ordering::Relaxed).saturating_sub(1)
        };
        if self.balance == Balance::LeastConnections {
            self.publish(|v| v.clusters[r.cluster].servers[r.server].sessions = n);
        }
    }

    pub fn count(&self, r: ServerRef, what: Counted) {
        let s = self.stats(r);
        match what {
            Counted::Read => &s.reads,
            Counted::Write => &s.writes,
            Counted::Other => &s.other,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Takes in a monitor snapshot: reachability and each replica's replication progress.
    pub fn apply_monitor(&self, snapshot: &lagless_topology::Snapshot) {
        if snapshot.round == 0 {
            return; // nothing probed yet
        }
        // What each cluster's primary had written at this look, to tell lagging replicas.
        let primary_pos = |cluster: usize| {
            snapshot
                .servers
                .iter()
                .find(|p| p.cluster == cluster && p.looks_like_primary())
                .and_then(|p| p.gtid_binlog_pos.as_deref())
                .and_then(|g| g.parse::<MariaPos>().ok())
        };
        // A replica counts as lagging when it has not even applied what the primary had one
        // monitor round earlier: trailing the latest writes by milliseconds is normal and must
        // not keep reads off it.
        let mut previous = self
            .previous_primary_pos
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        previous.resize(self.servers.len(), None);
        let mut updates = Vec::with_capacity(snapshot.servers.len());
        for o in &snapshot.servers {
            let Some(stats) = self.servers.get(o.cluster).and_then(|c| c.get(o.server)) else {
                continue;
            };
            let was_down = stats.monitor_down.swap(!o.reachable, Ordering::Relaxed);
            if !o.reachable && !was_down {
                self.demotions.wake_all();
            }
            let healthy = o.reachable
                && stats.down_until_ms.load(Ordering::Relaxed) == 0
                && !stats.fenced.load(Ordering::Acquire)
                && !stats.drained.load(Ordering::Acquire);
            let binlog = o.binlog.as_ref().filter(|_| o.reachable).map(|b| BinlogAt {
                pos: BinlogPos {
                    file: b.file.clone(),
                    pos: b.pos,
                },
                observed_ms: self.millis(o.observed_at),
            });
            let mut replica = replica_state(o);
            // What the server's binlog stream confirmed since may be newer than this poll.
            if let (Some(r), Some(streamed)) = (
                replica.as_mut(),
                self.streamed_executed(o.cluster, o.server),
            ) {
                let mut g = r.gtids.take().unwrap_or_default();
                g.merge_max(&streamed);
                r.gtids = Some(g);
            }
            if let (Some(r), Some(p)) =
                (replica.as_mut(), previous.get(o.cluster).cloned().flatten())
            {
                r.caught_up = r.gtids.as_ref().map(|g| g.contains(&p));
            }
            updates.push((o.cluster, o.server, healthy, replica, binlog));
        }
        if let Ok(mut prev) = self.previous_primary_pos.lock() {
            prev.resize(self.servers.len(), None);
            for (ci, slot) in prev.iter_mut().enumerate() {
                if let Some(p) = primary_pos(ci) {
                    *slot = Some(p);
                }
            }
        }
        if let Ok(mut obs) = self.observations.lock() {
            obs.retain(|o| {
                !snapshot
                    .servers
                    .iter()
                    .any(|n| n.cluster == o.cluster && n.server == o.server)
            });
            obs.extend(snapshot.servers.iter().cloned());
        }
        self.publish(|v| {
            for (ci, si, healthy, replica, binlog) in &updates {
                if let Some(s) = v.clusters.get_mut(*ci).and_then(|c| c.servers.get_mut(*si)) {
                    s.healthy = *healthy;
                    s.replica.clone_from(replica);
                    s.binlog.clone_from(binlog);
                }
            }
        });
    }

    /// Takes in the binlog streams' state: each replica's executed GTIDs move forward to what
    /// its stream confirmed, between the monitor's polls (and `caught_up` with them), and a
    /// primary's stream gives where its last transaction ends. The routing view is
    /// republished only when one of those moved.
    pub fn apply_streams(&self, streams: &[lagless_topology::StreamedServer]) {
        if let Ok(mut all) = self.streams.lock() {
            all.retain(|o| {
                !streams
                    .iter()
                    .any(|n| n.cluster == o.cluster && n.server == o.server)
            });
            all.extend(streams.iter().cloned());
        }
        let view = self.view.load();
        let positions = streams.iter().any(|s| {
            s.binlog.is_some()
                && view
                    .clusters
                    .get(s.cluster)
                    .and_then(|c| c.servers.get(s.server))
                    .is_some_and(|v| v.streamed_binlog != s.binlog)
        });
        let moved = positions
            || streams.iter().any(|s| {
                let (Some(e), Some(r)) = (
                    s.executed.as_ref(),
                    view.clusters
                        .get(s.cluster)
                        .and_then(|c| c.servers.get(s.server))
                        .and_then(|v| v.replica.as_ref()),
                ) else {
                    return false;
                };
                !r.gtids.as_ref().is_some_and(|g| g.contains(e))
            });
        if !moved {
            return;
        }
        let previous = self
            .previous_primary_pos
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        self.publish(|v| {
            for s in streams {
                if let (Some(b), Some(server)) = (
                    s.binlog.as_ref(),
                    v.clusters
                        .get_mut(s.cluster)
                        .and_then(|c| c.servers.get_mut(s.server)),
                ) {
                    server.streamed_binlog = Some(b.clone());
                }
                let Some(e) = s.executed.as_ref() else {
                    continue;
                };
                let Some(r) = v
                    .clusters
                    .get_mut(s.cluster)
                    .and_then(|c| c.servers.get_mut(s.server))
                    .and_then(|v| v.replica.as_mut())
                else {
                    continue;
                };
                let mut g = r.gtids.take().unwrap_or_default();
                g.merge_max(e);
                // A stream only ever shows a replica caught up: "behind" stays the polls'
                // judgement (what the primary had one round before the replica's poll). Under
                // a steady write load a replica's streamed position trails the primary's
                // latest poll by a transaction or two most of the time, which is not lag.
                if previous
                    .get(s.cluster)
                    .cloned()
                    .flatten()
                    .is_some_and(|p| g.contains(&p))
                {
                    r.caught_up = Some(true);
                }
                r.gtids = Some(g);
            }
        });
        if positions {
            self.write_positions.notify_waiters();
        }
    }

    /// A session in a position mode wrote: the primaries' binlog streams start, unless
    /// `[monitor] binlog_stream_primary = "off"`. Cheap once they run.
    pub fn want_primary_positions(&self) {
        if let Some(d) = &self.primary_positions {
            d.want();
        }
    }

    /// A session in a GTID mode is routing: the replicas' binlog streams start, unless
    /// `[monitor] binlog_streaming = false`. Cheap once they run.
    pub fn want_replica_gtids(&self) {
        if let Some(d) = &self.replica_gtids {
            d.want();
        }
    }

    /// Whether the replicas' binlog streams run (or are starting).
    pub fn replica_gtids_wanted(&self) -> bool {
        self.replica_gtids.as_ref().is_some_and(|d| d.wanted())
    }

    /// Whether the primaries' binlog streams run (or are starting).
    pub fn primary_positions_wanted(&self) -> bool {
        self.primary_positions.as_ref().is_some_and(|d| d.wanted())
    }

    /// Waits, until `until` at the latest, for the primary's binlog stream to show where the
    /// binlog holds `gtids`; true once it does. Returns at once when the primary is not
    /// streaming (its position then comes from the polls only).
    pub async fn await_write_position(
        &self,
        cluster: usize,
        gtids: &MariaPos,
        until: Instant,
    ) -> bool {
        loop {
            // Registered before the check, so a publication between the two is not missed.
            let notified = self.write_positions.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let view = self.view.load();
            if view.primary_binlog_through(cluster, gtids).is_some() {
                return true;
            }
            let streaming = self
                .stream(view.primary(cluster))
                .is_some_and(|s| s.state == lagless_topology::StreamState::Streaming);
            if !streaming || tokio::time::timeout_at(until, notified).await.is_err() {
                return false;
            }
        }
    }

    /// The executed GTIDs `server`'s binlog stream confirmed, while it streams.
    fn streamed_executed(&self, cluster: usize, server: usize) -> Option<MariaPos> {
        let streams = self.streams.lock().ok()?;
        streams
            .iter()
            .find(|s| s.cluster == cluster && s.server == server)
            .and_then(|s| s.executed.clone())
    }

    /// The binlog stream of `r`, when streaming is on.
    pub fn stream(&self, r: ServerRef) -> Option<lagless_topology::StreamedServer> {
        let streams = self.streams.lock().ok()?;
        streams
            .iter()
            .find(|s| s.cluster == r.cluster && s.server == r.server)
            .cloned()
    }

    /// Where routing learns `r`'s executed GTIDs besides polling: `"stream"` while its binlog
    /// stream is up and gives them (a primary's stream gives its binlog position only), else
    /// `"poll"`.
    pub fn gtid_source(&self, r: ServerRef) -> &'static str {
        match self.stream(r) {
            Some(s)
                if s.state == lagless_topology::StreamState::Streaming && s.executed.is_some() =>
            {
                "stream"
            }
            _ => "poll",
        }
    }

    pub fn failing_over(&self, cluster: usize) -> bool {
        self.failing_over
            .get(cluster)
            .is_some_and(|f| f.load(Ordering::Acquire))
    }

    pub fn set_failing_over(&self, cluster: usize, on: bool) {
        if let Some(f) = self.failing_over.get(cluster) {
            f.store(on, Ordering::Release);
        }
    }

    /// A replica was promoted: it takes the primary's role in the routing view, and the old
    /// primary is fenced (never routed to) until it rejoins as a replica.
    pub fn set_primary(&self, cluster: usize, new_primary: usize) {
        let old = self.view.load().primary(cluster).server;
        if old == new_primary {
            return;
        }
        if let Some(s) = self.servers.get(cluster).and_then(|c| c.get(old)) {
            s.fenced.store(true, Ordering::Release);
        }
        self.publish(|v| {
            if let Some(c) = v.clusters.get_mut(cluster) {
                for (i, s) in c.servers.iter_mut().enumerate() {
                    if i == new_primary {
                        s.role = lagless_config::Role::Primary;
                        s.healthy = true;
                        s.replica = None;
                    } else if i == old {
                        s.role = lagless_config::Role::Replica;
                        s.healthy = false;
                    }
                }
            }
        });
        self.demotions.wake_all();
    }

    /// A session's membership of the tasks woken by a demotion, for [`Self::until_demoted`].
    pub fn watch_demotions(&self) -> WakerSlot {
        self.demotions.join()
    }

    /// Runs `fut` unless `r` is lost first: then `None`. A primary is lost when it is fenced
    /// (demoted by a failover): a statement waiting on a hung primary ends this way once a
    /// replica is promoted. A replica is lost when the monitor finds it unreachable (a paused
    /// or hung server): the read waiting on it can go elsewhere. `watch` is the calling
    /// session's (see [`Self::watch_demotions`]).
    pub async fn until_demoted<T>(
        &self,
        r: ServerRef,
        watch: &WakerSlot,
        fut: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let demoted = std::future::poll_fn(|cx| {
            watch.register(cx.waker());
            if self.is_fenced(r) || (self.monitor_down(r) && !self.is_primary(r)) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        });
        // Biased: no random draw per statement, and the statement is polled first.
        tokio::select! {
            biased;
            out = fut => Some(out),
            () = demoted => None,
        }
    }

    /// Takes a replica out of the read pool (`drain`) or puts it back (`undrain`). Putting back
    /// is refused unless the monitor saw it reachable, replicating and caught up with the
    /// primary.
    ///
    /// # Errors
    /// A message saying why the server cannot be put back, or is not a replica.
    pub fn set_drained(&self, r: ServerRef, drained: bool) -> Result<(), String> {
        let view = self.view.load();
        if view.server(r).role == lagless_config::Role::Primary {
            return Err("the primary cannot be drained (switch over first)".into());
        }
        if !drained {
            let state = view.server(r).replica.as_ref();
            let reachable = self
                .observations()
                .iter()
                .any(|o| o.cluster == r.cluster && o.server == r.server && o.reachable);
            if !reachable || state.and_then(|s| s.caught_up) != Some(true) {
                return Err(
                    "not put back: the monitor has not seen it reachable and caught up".into(),
                );
            }
        }
        self.stats(r).drained.store(drained, Ordering::Release);
        let healthy = !drained && !self.stats(r).fenced.load(Ordering::Acquire);
        self.publish(|v| v.clusters[r.cluster].servers[r.server].healthy = healthy);
        Ok(())
    }

    /// Whether the routing view has `r` as its cluster's primary now.
    pub fn is_primary(&self, r: ServerRef) -> bool {
        self.view.load().primary(r.cluster) == r
    }

    /// The monitor's last probe of `r` failed.
    pub fn monitor_down(&self, r: ServerRef) -> bool {
        self.stats(r).monitor_down.load(Ordering::Relaxed)
    }

    pub fn is_fenced(&self, r: ServerRef) -> bool {
        self.stats(r).fenced.load(Ordering::Acquire)
    }

    /// A fenced former primary rejoined as a replica: it may serve reads again.
    pub fn unfence(&self, r: ServerRef) {
        self.stats(r).fenced.store(false, Ordering::Release);
    }

    /// The monitor's latest observations (empty before its first round).
    pub fn observations(&self) -> Vec<lagless_topology::ServerObservation> {
        self.observations
            .lock()
            .map(|o| o.clone())
            .unwrap_or_default()
    }

    pub fn is_down(&self, r: ServerRef) -> bool {
        self.stats(r).down_until_ms.load(Ordering::Relaxed) != 0
    }

    fn publish(&self, change: impl Fn(&mut ClusterView)) {
        self.view.rcu(|v| {
            let mut next = ClusterView::clone(v);
            change(&mut next);
            next
        });
    }

    /// The proxy's clock for routing: milliseconds since start.
    pub fn now_ms(&self) -> u64 {
        self.millis(Instant::now())
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64 + 1
    }
}

/// What routing needs from a replica's observation (None for servers that replicate from
/// nobody, or that the probe could not read).
fn replica_state(o: &lagless_topology::ServerObservation) -> Option<ReplicaState> {
    let r = o.replication.as_ref().filter(|_| o.reachable)?;
    let gtids = o
        .gtid_current_pos
        .as_deref()
        .or(o.gtid_slave_pos.as_deref())
        .and_then(|g| g.parse::<MariaPos>().ok());
    Some(ReplicaState {
        gtids,
        exec: Some(BinlogPos {
            file: r.relay_master_log_file.clone(),
            pos: r.exec_master_log_pos,
        }),
        seconds_behind: r.seconds_behind_master,
        heartbeat_lag_ms: o.heartbeat_lag.map(|d| d.as_millis() as u64),
        caught_up: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        lagless_config::from_toml_str(toml_of_config()).unwrap()
    }

    fn toml_of_config() -> &'static str {
        r#"
[[users]]
name = "a"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
[[clusters]]
name = "c"
user = "a"
[[clusters.servers]]
name = "p"
address = "127.0.0.1:1"
role = "primary"
[[clusters.servers]]
name = "r"
address = "127.0.0.1:2"
role = "replica"
"#
    }

    fn observation(
        server: usize,
        gtid: &str,
        replica: bool,
    ) -> lagless_topology::ServerObservation {
        let m = lagless_topology::MonitoredServer::new(0, server, "s", "127.0.0.1:1");
        let mut o = lagless_topology::ServerObservation::blank(&m, Instant::now());
        o.reachable = true;
        o.read_only = Some(replica);
        o.gtid_current_pos = Some(gtid.into());
        o.gtid_binlog_pos = Some(gtid.into());
        o.replication = replica.then(|| lagless_topology::ReplicaStatus {
            io_running: lagless_topology::ThreadState::Yes,
            sql_running: lagless_topology::ThreadState::Yes,
            seconds_behind_master: Some(0),
            master_host: "127.0.0.1".into(),
            master_port: 1,
            master_log_file: "b.000001".into(),
            read_master_log_pos: 4,
            relay_master_log_file: "b.000001".into(),
            exec_master_log_pos: 4,
            gtid_io_pos: gtid.into(),
            using_gtid: "Slave_Pos".into(),
            ..Default::default()
        });
        o
    }

    fn snapshot(primary: &str, replica: &str) -> lagless_topology::Snapshot {
        lagless_topology::Snapshot {
            servers: vec![
                observation(0, primary, false),
                observation(1, replica, true),
            ],
            taken_at: Instant::now(),
            round: 1,
        }
    }

    fn streamed(executed: Option<&str>) -> lagless_topology::StreamedServer {
        lagless_topology::StreamedServer {
            cluster: 0,
            server: 1,
            name: "r".into(),
            state: if executed.is_some() {
                lagless_topology::StreamState::Streaming
            } else {
                lagless_topology::StreamState::Retrying("lost".into())
            },
            executed: executed.map(|e| e.parse().unwrap()),
            streamed: executed.map(|e| e.parse().unwrap()),
            binlog: None,
            gtid_events: 0,
            updated_at: Instant::now(),
        }
    }

    /// The primary's stream: its last transaction, `through`, ends at byte `pos`.
    fn primary_streamed(through: &str, pos: u64) -> lagless_topology::StreamedServer {
        lagless_topology::StreamedServer {
            cluster: 0,
            server: 0,
            name: "p".into(),
            state: lagless_topology::StreamState::Streaming,
            executed: None,
            streamed: Some(through.parse().unwrap()),
            binlog: Some(lagless_routing::consistency::StreamedBinlog {
                pos: BinlogPos {
                    file: "b.000001".into(),
                    pos,
                },
                through: through.parse().unwrap(),
            }),
            gtid_events: 0,
            updated_at: Instant::now(),
        }
    }

    /// A state from the test config with `extra` TOML put first.
    fn state_with(extra: &str) -> ClusterState {
        let text = format!("{extra}\n{}", toml_of_config());
        ClusterState::new(
            &lagless_config::from_toml_str(&text).unwrap(),
            Instant::now(),
        )
    }

    #[test]
    fn the_replicas_streams_are_wanted_once_a_gtid_mode_is_used() {
        let state = ClusterState::new(&config(), Instant::now());
        assert!(
            state.replica_gtids_wanted(),
            "gtid by default: from the start"
        );
        let eventual = state_with("[consistency]\ndefault = \"eventual\"");
        assert!(
            !eventual.replica_gtids_wanted(),
            "eventual: not until asked"
        );
        eventual.want_replica_gtids();
        assert!(eventual.replica_gtids_wanted());
        let on =
            state_with("[consistency]\ndefault = \"eventual\"\n[monitor]\nbinlog_streaming = true");
        assert!(on.replica_gtids_wanted(), "true: always");
        let off = state_with("[monitor]\nbinlog_streaming = false");
        off.want_replica_gtids();
        assert!(!off.replica_gtids_wanted(), "false: never");
        assert!(off.replica_gtids.is_none());
    }

    #[test]
    fn the_primarys_stream_is_wanted_once_a_position_mode_is_used() {
        let state = ClusterState::new(&config(), Instant::now());
        assert!(
            !state.primary_positions_wanted(),
            "gtid by default: not wanted"
        );
        state.want_primary_positions();
        assert!(state.primary_positions_wanted());
        let positioned = state_with("[consistency]\ndefault = \"pos_wait(500)\"");
        assert!(
            positioned.primary_positions_wanted(),
            "a position mode configured"
        );
        let off = state_with("[monitor]\nbinlog_stream_primary = \"off\"");
        off.want_primary_positions();
        assert!(!off.primary_positions_wanted(), "off: never");
        let on = state_with("[monitor]\nbinlog_stream_primary = \"on\"");
        assert!(on.primary_positions_wanted());
    }

    #[tokio::test]
    async fn a_read_waits_for_its_writes_position_from_the_primarys_stream() {
        let state = Arc::new(ClusterState::new(&config(), Instant::now()));
        let p = ServerRef {
            cluster: 0,
            server: 0,
        };
        let write: MariaPos = "0-1-13".parse().unwrap();
        let soon = || Instant::now() + Duration::from_millis(30);
        // Not streaming: no wait at all.
        let t = Instant::now();
        assert!(
            !state
                .await_write_position(0, &write, t + Duration::from_secs(5))
                .await
        );
        assert!(t.elapsed() < Duration::from_secs(1));
        state.apply_streams(&[primary_streamed("0-1-12", 500)]);
        assert_eq!(
            state.gtid_source(p),
            "poll",
            "a primary's GTIDs are not routing's"
        );
        let view = state.view(Instant::now());
        assert_eq!(view.primary_binlog_through(0, &write), None);
        assert_eq!(
            view.primary_binlog_through(0, &"0-1-12".parse().unwrap())
                .map(|b| b.pos),
            Some(500)
        );
        // Streaming, but the write never shows: waits out the bound.
        assert!(!state.await_write_position(0, &write, soon()).await);
        // It shows while the read waits: the wait ends with it.
        let s2 = state.clone();
        let publisher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            s2.apply_streams(&[primary_streamed("0-1-13", 700)]);
        });
        assert!(
            state
                .await_write_position(0, &write, Instant::now() + Duration::from_secs(5))
                .await
        );
        publisher.await.unwrap();
        let view = state.view(Instant::now());
        assert_eq!(
            view.primary_binlog_through(0, &write).map(|b| b.pos),
            Some(700)
        );
    }

    fn replica_gtids(state: &ClusterState) -> (String, Option<bool>) {
        let view = state.view(Instant::now());
        let r = view.clusters[0].servers[1].replica.clone().unwrap();
        (r.gtids.unwrap().to_string(), r.caught_up)
    }

    #[test]
    fn streamed_gtids_move_a_replica_forward_between_polls() {
        let state = ClusterState::new(&config(), Instant::now());
        let r = ServerRef {
            cluster: 0,
            server: 1,
        };
        state.apply_monitor(&snapshot("0-1-10", "0-1-5"));
        state.apply_monitor(&snapshot("0-1-12", "0-1-5"));
        assert_eq!(replica_gtids(&state), ("0-1-5".into(), Some(false)));
        assert_eq!(state.gtid_source(r), "poll");
        // The stream confirms 0-1-11: still behind what the primary had at the last poll
        // (the polls said behind: it stays so).
        state.apply_streams(&[streamed(Some("0-1-11"))]);
        assert_eq!(replica_gtids(&state), ("0-1-11".into(), Some(false)));
        assert_eq!(state.gtid_source(r), "stream");
        // Then 0-1-12: caught up.
        state.apply_streams(&[streamed(Some("0-1-12"))]);
        assert_eq!(replica_gtids(&state), ("0-1-12".into(), Some(true)));
        // An older poll does not move it back while the stream is up.
        state.apply_monitor(&snapshot("0-1-12", "0-1-8"));
        assert_eq!(replica_gtids(&state).0, "0-1-12");
        // The stream is lost: polls alone again.
        state.apply_streams(&[streamed(None)]);
        assert_eq!(state.gtid_source(r), "poll");
        state.apply_monitor(&snapshot("0-1-12", "0-1-9"));
        assert_eq!(replica_gtids(&state).0, "0-1-9");
        // Under steady writes a replica trails the primary's latest poll by a few
        // transactions: a stream does not turn the polls' "caught up" into "behind".
        state.apply_monitor(&snapshot("0-1-20", "0-1-20"));
        state.apply_monitor(&snapshot("0-1-30", "0-1-25"));
        assert_eq!(replica_gtids(&state), ("0-1-25".into(), Some(true)));
        state.apply_streams(&[streamed(Some("0-1-27"))]);
        assert_eq!(replica_gtids(&state), ("0-1-27".into(), Some(true)));
    }

    #[test]
    fn a_failed_server_is_set_aside_then_comes_back() {
        let t0 = Instant::now();
        let state = ClusterState::new(&config(), t0);
        let r = ServerRef {
            cluster: 0,
            server: 1,
        };
        assert!(state.view(t0).is_usable(r));
        state.mark_down(r, Duration::from_millis(500), t0);
        assert!(!state.view(t0 + Duration::from_millis(100)).is_usable(r));
        assert!(state.is_down(r));
        assert!(state.view(t0 + Duration::from_millis(600)).is_usable(r));
        assert!(!state.is_down(r));
        assert_eq!(state.stats(r).failures.load(Ordering::Relaxed), 1);
    }
}
