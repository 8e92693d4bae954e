//! [`spawn`]: one task per server (its prober and connection) and one task that runs the rounds
//! and publishes snapshots.
//!
//! Every interval a round starts: each server whose previous probe has finished is asked to
//! probe again, all at once. A snapshot is published
//! - when the round is complete: every server asked has answered, not counting servers already
//!   known to be unreachable (a stalled server is not waited for again and again);
//! - half an interval into the round, if it is still incomplete, with what the others brought
//!   (a server that just stalled delays the others by at most half an interval, once); then
//!   again when the round completes, or at the next round's start;
//! - at once when a server's reachability changes.
//!
//! A server whose probe is still running when a round starts (stalled until its timeout) is not
//! asked again; its last observation stays in the snapshots until its probe ends.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{interval, sleep_until, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::MonitorConfig;
use crate::heartbeat;
use crate::probe::{ProbeRequest, Prober};
use crate::types::{ServerObservation, Snapshot};

/// Starts the monitor: returns the snapshots and the task, which ends when `shutdown` is
/// cancelled (then the receiver's `changed()` fails once the last snapshot was seen).
///
/// The receiver holds an initial snapshot at once (`round` 0, every server "not probed yet");
/// the first real one follows within a few milliseconds of the servers answering.
///
/// # Panics
///
/// When `config.validate()` fails (call it first to get the error), or outside a Tokio
/// runtime.
pub fn spawn(
    config: MonitorConfig,
    shutdown: CancellationToken,
) -> (watch::Receiver<Arc<Snapshot>>, JoinHandle<()>) {
    if let Err(e) = config.validate() {
        panic!("{e}");
    }
    let now = Instant::now();
    let rounds = Rounds::new(
        config
            .servers
            .iter()
            .map(|s| ServerObservation::not_probed(s, now))
            .collect(),
    );
    let (tx, rx) = watch::channel(Arc::new(rounds.snapshot(now)));
    let task = tokio::spawn(run(config, rounds, tx, shutdown));
    (rx, task)
}

async fn run(
    config: MonitorConfig,
    mut rounds: Rounds,
    tx: watch::Sender<Arc<Snapshot>>,
    shutdown: CancellationToken,
) {
    let n = config.servers.len();
    let (results_tx, mut results) = mpsc::channel(n.max(1));
    let mut probers = JoinSet::new();
    let mut requests = Vec::with_capacity(n);
    for (i, server) in config.servers.iter().enumerate() {
        let (req_tx, req_rx) = mpsc::channel(1);
        requests.push(req_tx);
        let prober = Prober::new(server.clone(), &config);
        probers.spawn(prober_task(
            i,
            prober,
            req_rx,
            results_tx.clone(),
            shutdown.clone(),
        ));
    }
    drop(results_tx);
    let mut ticker = interval(config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // A healthy probe takes milliseconds: one still running half an interval after the round
    // started does not hold the others' observations back any longer.
    let grace = config.interval / 2;
    let mut grace_ends: Option<Instant> = None;
    let min_gap = config.interval / 10;
    let mut last_round = Instant::now();
    let probe_now = config.probe_now.clone();
    let woken = || async {
        match &probe_now {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    loop {
        let publish = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            () = woken() => {
                if last_round.elapsed() >= min_gap {
                    ticker.reset_immediately();
                } else {
                    ticker.reset_at(last_round + min_gap);
                }
                false
            }
            Some((i, obs)) = results.recv() => rounds.on_result(i, obs),
            _ = sleep_until(grace_ends.unwrap_or_else(Instant::now)), if grace_ends.is_some() => {
                grace_ends = None;
                rounds.grace_expired()
            }
            started = ticker.tick() => {
                last_round = started;
                grace_ends = Some(started + grace);
                let (publish, asked) = rounds.start_round();
                for (i, request) in asked {
                    if requests[i].try_send(request).is_err() {
                        tracing::error!(server = %config.servers[i].name, "monitor task of server is gone");
                        rounds.on_lost(i);
                    }
                }
                publish
            }
        };
        if publish {
            tx.send_replace(Arc::new(rounds.publish(Instant::now())));
        }
    }
    probers.shutdown().await;
}

async fn prober_task(
    index: usize,
    mut prober: Prober,
    mut requests: mpsc::Receiver<ProbeRequest>,
    results: mpsc::Sender<(usize, ServerObservation)>,
    shutdown: CancellationToken,
) {
    loop {
        let request = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = requests.recv() => match r {
                Some(r) => r,
                None => return,
            },
        };
        let obs = tokio::select! {
            _ = shutdown.cancelled() => return,
            obs = prober.probe(request) => obs,
        };
        if results.send((index, obs)).await.is_err() {
            return;
        }
    }
}

/// The rounds' bookkeeping, without I/O: which servers to ask, when a round is complete,
/// when to publish. The caller publishes (with [`Rounds::publish`]) whenever a method returns
/// true.
#[derive(Debug)]
struct Rounds {
    latest: Vec<ServerObservation>,
    /// A probe of this server has finished at least once.
    seen: Vec<bool>,
    /// A probe of this server is running.
    busy: Vec<bool>,
    /// Asked in the current round and not answered yet.
    pending: Vec<bool>,
    round: u64,
    /// The current round is not complete.
    open: bool,
    /// Observations arrived since the last publication.
    dirty: bool,
}

impl Rounds {
    fn new(initial: Vec<ServerObservation>) -> Self {
        let n = initial.len();
        Rounds {
            latest: initial,
            seen: vec![false; n],
            busy: vec![false; n],
            pending: vec![false; n],
            round: 0,
            open: false,
            dirty: false,
        }
    }

    fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            servers: self.latest.clone(),
            taken_at: now,
            round: self.round,
        }
    }

    /// The snapshot to publish now.
    fn publish(&mut self, now: Instant) -> Snapshot {
        self.dirty = false;
        self.snapshot(now)
    }

    /// The round waits for a pending server unless it is known to be unreachable.
    fn waiting(&self) -> bool {
        (0..self.latest.len())
            .any(|i| self.pending[i] && (self.latest[i].reachable || !self.seen[i]))
    }

    /// Starts a round: returns whether to publish now (what the previous, incomplete round
    /// gathered, or this round when it has nothing to wait for) and the servers to ask.
    fn start_round(&mut self) -> (bool, Vec<(usize, ProbeRequest)>) {
        let leftovers = self.open && self.dirty;
        self.round += 1;
        let writers = heartbeat::writers(&self.latest);
        let mut asked = Vec::new();
        for (i, may_write_heartbeat) in writers.into_iter().enumerate() {
            self.pending[i] = !self.busy[i];
            if !self.busy[i] {
                self.busy[i] = true;
                asked.push((
                    i,
                    ProbeRequest {
                        may_write_heartbeat,
                    },
                ));
            }
        }
        self.open = self.waiting();
        (leftovers || !self.open, asked)
    }

    /// The round's grace period ended (half an interval after its start) with some server
    /// still probing: returns whether to publish what the others brought. The round stays
    /// open, and is published again when it completes.
    fn grace_expired(&mut self) -> bool {
        self.open && self.dirty
    }

    /// A probe finished: returns whether to publish now (the round is complete, or the
    /// server's reachability changed).
    fn on_result(&mut self, i: usize, obs: ServerObservation) -> bool {
        let changed = self.seen[i] && self.latest[i].reachable != obs.reachable;
        if changed || (!self.seen[i] && !obs.reachable) {
            if obs.reachable {
                tracing::info!(server = %obs.name, "server reachable");
            } else {
                tracing::warn!(server = %obs.name, error = obs.error.as_deref().unwrap_or(""), "server unreachable");
            }
        }
        self.seen[i] = true;
        self.busy[i] = false;
        self.pending[i] = false;
        self.latest[i] = obs;
        self.dirty = true;
        let complete = self.open && !self.waiting();
        if complete {
            self.open = false;
        }
        changed || complete
    }

    /// The server's task is gone (it panicked): never ask it again, stop waiting for it.
    fn on_lost(&mut self, i: usize) {
        self.pending[i] = false;
        self.latest[i].reachable = false;
        self.latest[i].error = Some("the monitor task of this server ended".into());
        self.dirty = true;
        self.open = self.open && self.waiting();
    }
}

#[cfg(test)]
mod tests;
