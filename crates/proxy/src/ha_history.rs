//! The history of high-availability actions (failovers, switchovers, rejoins, quarantines),
//! newest last, for the admin interface: every step with its duration, and the transactions a
//! failover may have lost.

use std::collections::VecDeque;
use std::sync::Mutex;

use lagless_topology::failover::{Event, Outcome};

/// How many actions are kept.
const KEPT: usize = 50;

/// One action.
#[derive(Debug, Clone)]
pub struct HaRecord {
    /// When it ended, in ms since the proxy started.
    pub at_ms: u64,
    pub cluster: String,
    /// "failover", "failover_failed", "adopted", "switchover", "switchover_failed", "rejoin",
    /// "quarantine".
    pub kind: &'static str,
    /// The server the action concerns (the new primary, the rejoined or quarantined server).
    pub server: String,
    pub summary: String,
    pub total_ms: Option<f64>,
    /// Transactions the old primary has that the new primary lacks: written on the old primary
    /// and possibly acknowledged, but lost by the failover (asynchronous replication).
    pub possibly_lost: Vec<String>,
    pub steps: Vec<HaStep>,
}

/// One timed step of an action.
#[derive(Debug, Clone)]
pub struct HaStep {
    pub server: String,
    pub step: String,
    pub statement: Option<String>,
    pub at_ms: f64,
    pub took_ms: f64,
    /// "done", "warning: ..." or "failed: ...".
    pub outcome: String,
}

impl HaStep {
    pub fn from_event(e: &Event) -> Self {
        HaStep {
            server: e.server.clone(),
            step: e.step.to_string(),
            statement: e.statement.clone(),
            at_ms: e.at.as_secs_f64() * 1000.0,
            took_ms: e.took.as_secs_f64() * 1000.0,
            outcome: match &e.outcome {
                Outcome::Done => "done".into(),
                Outcome::Warning(w) => format!("warning: {w}"),
                Outcome::Failed(f) => format!("failed: {f}"),
            },
        }
    }
}

/// The kept records.
#[derive(Debug, Default)]
pub struct HaHistory {
    records: Mutex<VecDeque<HaRecord>>,
}

impl HaHistory {
    pub fn push(&self, record: HaRecord) {
        if let Ok(mut r) = self.records.lock() {
            if r.len() == KEPT {
                r.pop_front();
            }
            r.push_back(record);
        }
    }

    /// Every kept record, oldest first.
    pub fn records(&self) -> Vec<HaRecord> {
        self.records
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}
