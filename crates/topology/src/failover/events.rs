//! The record of an action: one [`Event`] per step, timed, in order. Also logged through
//! `tracing` as it happens (target `lagless_topology::failover`).

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// A step of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Connecting and logging in.
    Connect,
    /// `GET_LOCK` / `RELEASE_LOCK`.
    Lock,
    /// Looking for an already promoted primary.
    CheckPromoted,
    /// `STOP SLAVE IO_THREAD`: the candidate stops receiving, so what it received is final.
    StopIoThread,
    /// Reading GTID positions or replication status.
    ReadPositions,
    /// Waiting until the candidate applied what it received.
    WaitApplied,
    /// Waiting until a switchover's target applied the old primary's last transaction.
    WaitCaughtUp,
    /// `KILL` of the candidate's SQL thread when it did not catch up.
    KillSqlThread,
    /// `KILL` of a replica's IO thread before `STOP SLAVE` (it may be stuck on a stalled
    /// primary).
    KillIoThread,
    StopSlave,
    ResetSlaveAll,
    /// `SET GLOBAL read_only = 1`.
    SetReadOnly,
    /// `SET GLOBAL read_only = 0`.
    SetWritable,
    /// Semi-sync variables.
    SemiSync,
    /// Comparing an old primary's history with the new primary's.
    CheckHistory,
    /// `SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos`.
    SetSlavePos,
    ChangeMaster,
    StartSlave,
    /// Waiting until a repointed replica's IO and SQL threads run.
    VerifyReplicating,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Lock => "lock",
            Step::CheckPromoted => "check for a promoted primary",
            Step::StopIoThread => "stop IO thread",
            Step::ReadPositions => "read positions",
            Step::WaitApplied => "wait until applied",
            Step::WaitCaughtUp => "wait until caught up",
            Step::KillSqlThread => "kill SQL thread",
            Step::KillIoThread => "kill IO thread",
            Step::StopSlave => "stop slave",
            Step::ResetSlaveAll => "reset slave all",
            Step::SetReadOnly => "set read_only=1",
            Step::SetWritable => "set read_only=0",
            Step::SemiSync => "semi-sync settings",
            Step::CheckHistory => "check history",
            Step::SetSlavePos => "set gtid_slave_pos",
            Step::ChangeMaster => "change master",
            Step::StartSlave => "start slave",
            Step::VerifyReplicating => "verify replicating",
        })
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Done, with something to know (e.g. the apply wait timed out and the action went on).
    Warning(String),
    Failed(String),
}

/// One timed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub server: String,
    pub step: Step,
    /// The statement sent, if any (passwords replaced by `'***'`).
    pub statement: Option<String>,
    /// When the step started, since the action started.
    pub at: Duration,
    pub took: Duration,
    pub outcome: Outcome,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>8.1?} {:>8.1?}  {:<10} {}",
            self.at, self.took, self.server, self.step
        )?;
        match &self.outcome {
            Outcome::Done => {}
            Outcome::Warning(w) => write!(f, " [warning: {w}]")?,
            Outcome::Failed(e) => write!(f, " [FAILED: {e}]")?,
        }
        if let Some(s) = &self.statement {
            write!(f, "  -- {s}")?;
        }
        Ok(())
    }
}

/// Collects the events of one action.
#[derive(Debug)]
pub(crate) struct Recorder {
    started: Instant,
    events: Vec<Event>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder {
            started: Instant::now(),
            events: Vec::new(),
        }
    }

    /// A recorder for a concurrent part of the same action (same start).
    pub(crate) fn fork(&self) -> Self {
        Recorder {
            started: self.started,
            events: Vec::new(),
        }
    }

    /// Takes in the events of a fork, keeping the whole in start order.
    pub(crate) fn absorb(&mut self, other: Recorder) {
        self.events.extend(other.events);
        self.events.sort_by_key(|e| e.at);
    }

    /// Time since the action started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records a step that started at `started` and ends now.
    pub(crate) fn record(
        &mut self,
        server: &str,
        step: Step,
        statement: Option<String>,
        started: Instant,
        outcome: Outcome,
    ) {
        let event = Event {
            server: server.to_string(),
            step,
            statement,
            at: started.saturating_duration_since(self.started),
            took: started.elapsed(),
            outcome,
        };
        match &event.outcome {
            Outcome::Done => tracing::debug!(target: "lagless_topology::failover", "{event}"),
            Outcome::Warning(_) => tracing::warn!(target: "lagless_topology::failover", "{event}"),
            Outcome::Failed(_) => tracing::error!(target: "lagless_topology::failover", "{event}"),
        }
        self.events.push(event);
    }

    pub(crate) fn into_events(self) -> Vec<Event> {
        self.events
    }
}

/// The events as lines, for reports.
pub(crate) fn write_events(f: &mut fmt::Formatter<'_>, events: &[Event]) -> fmt::Result {
    writeln!(f, "{:>8} {:>8}  {:<10} step", "at", "took", "server")?;
    for e in events {
        writeln!(f, "{e}")?;
    }
    Ok(())
}
