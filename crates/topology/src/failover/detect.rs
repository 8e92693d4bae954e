//! Is the primary down? Decided from the monitor's snapshots, without I/O; the current time is
//! an input.
//!
//! The primary is declared failed only when two independent views agree:
//!
//! 1. **The proxy's own probes** of it failed [`DetectionPolicy::failcount`] times in a row
//!    (the monitor's [`ServerObservation::consecutive_failures`]), the first of those at least
//!    [`DetectionPolicy::min_unreachable`] ago. A killed server refuses connections at once; a
//!    paused (SIGSTOP) or overloaded one shows as probe timeouts.
//! 2. **The replicas**: every reachable replica of it, observed after the primary was last
//!    seen alive, no longer receives from it: its IO thread is not `Yes` (`Connecting` after a
//!    lost connection) or it reports an IO error (`Last_IO_Errno`), or it has received
//!    nothing, not even a heartbeat, for 2 heartbeat periods + 500 ms (MariaDB's
//!    `Slave_received_heartbeats`; see `silent`). A primary that the proxy cannot reach but
//!    whose replicas still receive (a primary at 100% CPU, a network problem between the
//!    proxy and the primary only) is not failed over.
//!
//! How fast replicas notice: a killed primary closes its connections, and the replicas show
//! `Connecting` within milliseconds. A stalled primary (paused, hung, or its network cut) does
//! not: the IO thread only gives up when nothing arrives for `slave_net_timeout` seconds
//! (default 60). The heartbeat count shows it sooner: a live primary sends a heartbeat after
//! every `MASTER_HEARTBEAT_PERIOD` without events, so a count and received position that stand
//! still for 2 periods + 500 ms mean it is silent. The sandbox sets the period to 0.25 s
//! (`slave_net_timeout = 2`), and Lagless keeps that period when it repoints replicas
//! ([`FailoverOptions::heartbeat_period`](super::FailoverOptions::heartbeat_period)).
//!
//! When no replica is reachable, the probes alone decide (and there is then nothing to
//! promote: [`choose_candidate`](super::choose_candidate) finds no candidate).
//!
//! Only the direct replicas of the primary count: those whose `Master_Host:Master_Port` is the
//! primary's address. When none matches (the replicas use another name for it), every
//! reachable replica counts.

use std::borrow::Borrow;
use std::time::Duration;

use tokio::time::Instant;

use crate::types::{ServerObservation, Snapshot, ThreadState};

use super::Member;

/// When the primary is declared failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectionPolicy {
    /// Consecutive failed probes of the primary (at least 1; 0 counts as 1). With the replicas'
    /// confirmation required as well, one failed probe is enough by default; raise it on a
    /// network that drops probes.
    pub failcount: u32,
    /// Time since the first of those failed probes ended.
    pub min_unreachable: Duration,
}

impl Default for DetectionPolicy {
    /// One failed probe, no minimum time: the replicas' confirmation is the guard.
    fn default() -> Self {
        DetectionPolicy {
            failcount: 1,
            min_unreachable: Duration::ZERO,
        }
    }
}

/// What [`primary_failed`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The primary answered its latest probe.
    Alive,
    /// Nothing to judge: no snapshot, the primary is not in it, or it was not probed yet.
    Unknown,
    /// Its probes fail, but not (yet) enough to act.
    Suspect(Suspicion),
    /// Confirmed failed.
    Failed(Failure),
}

impl Verdict {
    pub fn is_failed(&self) -> bool {
        matches!(self, Verdict::Failed(_))
    }
}

/// A primary whose probes fail, and what is missing before it is declared failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    /// Consecutive failed probes.
    pub failures: u32,
    /// Since the first of them ended.
    pub unreachable_for: Duration,
    /// At least one entry.
    pub waiting_for: Vec<Pending>,
}

/// One condition of [`DetectionPolicy`] not met yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// More failed probes needed.
    Failures { have: u32, need: u32 },
    /// More time needed.
    Time { left: Duration },
    /// This replica still receives from the primary.
    StillReceiving { replica: String },
    /// This replica was not observed since the primary was last seen alive.
    NotObservedSince { replica: String },
}

/// A primary declared failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub primary: String,
    /// Consecutive failed probes.
    pub failures: u32,
    /// Since the first of them ended.
    pub unreachable_for: Duration,
    /// The reachable replicas that no longer receive from it (empty when no replica is
    /// reachable).
    pub confirmed_by: Vec<String>,
    /// Its last error, as the monitor reported it.
    pub error: Option<String>,
}

/// Decides whether `primary` (a server name) failed, from `history`: the monitor's snapshots,
/// oldest first (an `Arc<Snapshot>` or a `Snapshot` each). Only the latest snapshot and, going
/// back, the primary's observations up to its last successful probe are read, so keeping the
/// last few seconds of snapshots is enough.
pub fn primary_failed<S: Borrow<Snapshot>>(
    history: &[S],
    primary: &str,
    policy: &DetectionPolicy,
    now: Instant,
) -> Verdict {
    let Some(latest) = history.last().map(Borrow::borrow) else {
        return Verdict::Unknown;
    };
    let Some(p) = latest.by_name(primary) else {
        return Verdict::Unknown;
    };
    if p.reachable {
        return Verdict::Alive;
    }
    if p.consecutive_failures == 0 {
        // "not probed yet"
        return Verdict::Unknown;
    }

    // When did the current run of failures start, and when was the primary last seen alive?
    let mut first_failed_at = p.observed_at;
    let mut last_alive_at = None;
    for snap in history.iter().rev().map(Borrow::borrow) {
        match snap.by_name(primary) {
            Some(o) if o.reachable => {
                last_alive_at = Some(o.observed_at);
                break;
            }
            Some(o) if o.consecutive_failures > 0 => {
                first_failed_at = first_failed_at.min(o.observed_at);
            }
            _ => {}
        }
    }
    let unreachable_for = now.saturating_duration_since(first_failed_at);
    // Replica observations older than this say nothing about the failure.
    let evidence_after = last_alive_at.unwrap_or(first_failed_at);

    let mut waiting_for = Vec::new();
    let need = policy.failcount.max(1);
    if p.consecutive_failures < need {
        waiting_for.push(Pending::Failures {
            have: p.consecutive_failures,
            need,
        });
    }
    if unreachable_for < policy.min_unreachable {
        waiting_for.push(Pending::Time {
            left: policy.min_unreachable - unreachable_for,
        });
    }
    let mut confirmed_by = Vec::new();
    for r in replicas_of(&latest.servers, p) {
        if r.observed_at < evidence_after {
            waiting_for.push(Pending::NotObservedSince {
                replica: r.name.clone(),
            });
        } else if !receives(r) || silent(history, r) {
            confirmed_by.push(r.name.clone());
        } else {
            waiting_for.push(Pending::StillReceiving {
                replica: r.name.clone(),
            });
        }
    }

    if waiting_for.is_empty() {
        Verdict::Failed(Failure {
            primary: primary.to_string(),
            failures: p.consecutive_failures,
            unreachable_for,
            confirmed_by,
            error: p.error.clone(),
        })
    } else {
        Verdict::Suspect(Suspicion {
            failures: p.consecutive_failures,
            unreachable_for,
            waiting_for,
        })
    }
}

/// The IO thread runs and reports no error: the replica is connected to its primary and
/// receiving (or waiting for) events.
fn receives(r: &ServerObservation) -> bool {
    r.replication
        .as_ref()
        .is_some_and(|st| st.io_running == ThreadState::Yes && st.last_io_errno == 0)
}

/// How long past two heartbeat periods a replica must have received nothing to count as cut
/// off: room for heartbeats sent late by a busy primary on a busy machine, and for probe
/// timing. Measured: on a 2-core machine at load average 10-14 with the primary's CPU
/// saturated, 1.5 periods + 200 ms (575 ms) of silence happened; a SIGSTOP is still detected
/// within about 1.2 s with this bound.
const SILENCE_MARGIN: Duration = Duration::from_millis(500);

/// The replica's IO thread still says `Yes`, but nothing (no event, no heartbeat) arrived from
/// its primary for 2 heartbeat periods plus [`SILENCE_MARGIN`]: a live primary sends a
/// heartbeat whenever it has had nothing to send for one period, so it is stalled (SIGSTOP,
/// hung, network cut). This signal comes long before the IO thread's own `slave_net_timeout`
/// (2 periods by default, and it takes a reconnect to show). Needs MariaDB's heartbeat count
/// in the replica's status (`Slave_received_heartbeats`); without it, `false`.
///
/// The silence is measured between this replica's observations in `history`: from the oldest
/// one in the unbroken run (going back from the latest) whose received position and heartbeat
/// count are the latest's, to the latest. That is a lower bound of the real silence.
fn silent<S: Borrow<Snapshot>>(history: &[S], replica: &ServerObservation) -> bool {
    let Some(st) = replica.replication.as_ref() else {
        return false;
    };
    let (Some(_), Some(period)) = (st.received_heartbeats, st.heartbeat_period) else {
        return false;
    };
    // Nothing received since: same heartbeat count, same received position.
    let unchanged = |s: &crate::types::ReplicaStatus| {
        s.received_heartbeats == st.received_heartbeats
            && s.read_master_log_pos == st.read_master_log_pos
            && s.master_log_file == st.master_log_file
            && s.gtid_io_pos == st.gtid_io_pos
    };
    let mut since = replica.observed_at;
    for snap in history.iter().rev().map(Borrow::borrow) {
        let Some(o) = snap.by_name(&replica.name) else {
            break;
        };
        match o.replication.as_ref() {
            Some(s) if o.reachable && unchanged(s) => since = since.min(o.observed_at),
            _ => break,
        }
    }
    replica.observed_at.saturating_duration_since(since) >= period * 2 + SILENCE_MARGIN
}

/// The reachable replicas of `primary` among `servers`: those replicating from its address, or
/// every reachable replica when none does (see the module's documentation).
fn replicas_of<'a>(
    servers: &'a [ServerObservation],
    primary: &ServerObservation,
) -> Vec<&'a ServerObservation> {
    let address = Member::from(primary);
    let target = address.host_port();
    let replicating: Vec<&ServerObservation> = servers
        .iter()
        .filter(|o| o.name != primary.name && o.reachable && o.replication.is_some())
        .collect();
    let of_primary = |o: &ServerObservation| match (target, o.replication.as_ref()) {
        (Some((host, port)), Some(st)) => {
            st.master_port == port && st.master_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    };
    if replicating.iter().any(|o| of_primary(o)) {
        replicating.into_iter().filter(|o| of_primary(o)).collect()
    } else {
        replicating
    }
}

/// A server that looks promoted: reachable, writable and replicating from nobody, and not
/// named in `excluded` (the failed or old primary). The first in `observations`' order.
pub fn promoted_primary<'a>(
    observations: &'a [ServerObservation],
    excluded: &[&str],
) -> Option<&'a ServerObservation> {
    observations
        .iter()
        .find(|o| o.looks_like_primary() && !excluded.contains(&o.name.as_str()))
}

/// The server that most recently was the only one to look like a primary in a snapshot of
/// `history` (oldest first).
pub fn last_primary<S: Borrow<Snapshot>>(history: &[S]) -> Option<&str> {
    history.iter().rev().map(Borrow::borrow).find_map(|snap| {
        let mut primaries = snap.servers.iter().filter(|o| o.looks_like_primary());
        match (primaries.next(), primaries.next()) {
            (Some(p), None) => Some(p.name.as_str()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests;
