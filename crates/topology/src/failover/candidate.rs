//! Which replica to promote. Pure: reads observations, returns a choice.
//!
//! **Eligible**: reachable, replicating (a replication connection is configured), not
//! excluded, no `MASTER_DELAY` (a delayed replica's relay log holds a backlog it is not allowed
//! to apply yet, and `RESET SLAVE ALL` would discard it), and readable MariaDB GTID positions.
//!
//! **Received** is the replica's `Gtid_IO_Pos` (what its IO thread wrote to the relay log),
//! merged with what it applied (`gtid_slave_pos`). **Applied** is `gtid_slave_pos`.
//!
//! **The rule: never promote a replica missing a transaction another reachable replica
//! received.** The candidate's received position must contain the received position of every
//! reachable replica, eligible or not (an excluded or delayed replica may hold the newest
//! transactions). Among those that qualify: the most applied (less to wait for), then the
//! highest priority, then the name, so that every proxy choosing from the same state chooses
//! the same server.
//!
//! Why this keeps every acknowledged transaction with semi-sync: with
//! `rpl_semi_sync_master_wait_point = AFTER_SYNC` the primary writes a transaction to its binlog,
//! waits until at least one replica acknowledged it, which a replica does once the event is in
//! its relay log, and only then commits it in the engine and answers the client. So every
//! transaction a client saw committed is in the relay log (the received position) of at least
//! one replica, and a replica whose received position contains every other's has all of them.
//! Limits: the acknowledging replica must be reachable (if it is down too, no tool can recover
//! its relay log); with the default AFTER_COMMIT wait point, or after semi-sync fell back to
//! asynchronous (`rpl_semi_sync_master_timeout` expired with no replica connected), a
//! transaction can be committed on the primary and visible to other sessions before any replica
//! has it. Without semi-sync the same rule still loses as little as the replicas allow.
//!
//! In one GTID domain positions are totally ordered, so some eligible replica qualifies unless
//! only an ineligible one received the newest transactions. With several domains two replicas
//! can each be ahead in a different domain; then nobody qualifies and the choice, which loses
//! transactions either way, is left to an operator ([`NoCandidate::WouldLose`]).

use std::fmt;

use lagless_routing::gtid::MariaPos;

use crate::types::ServerObservation;

use super::Member;

/// The replica to promote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub address: String,
    /// What it received (`Gtid_IO_Pos` merged with `gtid_slave_pos`).
    pub received: MariaPos,
    /// What it applied (`gtid_slave_pos`).
    pub applied: MariaPos,
    pub priority: i32,
    /// The other servers and why each was not chosen.
    pub others: Vec<Rejected>,
}

impl Candidate {
    pub fn member(&self) -> Member {
        Member::new(self.name.clone(), self.address.clone())
    }
}

/// A server that was not chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub name: String,
    pub why: Rejection,
}

/// Why a server was not chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Unreachable,
    /// No replication connection: a primary, or a server replicating from nobody.
    NotAReplica,
    Excluded,
    /// `MASTER_DELAY` of this many seconds.
    Delayed(u64),
    /// No MariaDB GTID position (a MySQL server, or the variables could not be read), or one
    /// that does not parse.
    NoPosition(String),
    /// Eligible, but it lacks transactions the given replica received.
    Behind {
        of: String,
    },
    /// Eligible and holding everything, but ranked lower (applied less, lower priority, or a
    /// later name).
    RankedLower,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Unreachable => f.write_str("unreachable"),
            Rejection::NotAReplica => f.write_str("not a replica"),
            Rejection::Excluded => f.write_str("excluded"),
            Rejection::Delayed(s) => write!(f, "delayed by {s} s"),
            Rejection::NoPosition(why) => write!(f, "no GTID position: {why}"),
            Rejection::Behind { of } => write!(f, "lacks transactions {of} received"),
            Rejection::RankedLower => f.write_str("ranked lower"),
        }
    }
}

/// No replica can be promoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoCandidate {
    /// No server is eligible.
    #[error("no eligible replica ({})", list(.rejected))]
    NoEligibleReplica { rejected: Vec<Rejected> },
    /// Every eligible replica lacks transactions that some reachable replica received:
    /// promoting any of them would lose those (acknowledged ones, with semi-sync).
    #[error(
        "every eligible replica lacks transactions another reachable replica received \
         (best: {best}; ahead of it: {}); un-exclude or undelay the replica that has them, or \
         decide by hand", .ahead.join(", ")
    )]
    WouldLose {
        best: String,
        /// The replicas holding transactions `best` lacks.
        ahead: Vec<String>,
        rejected: Vec<Rejected>,
    },
}

fn list(rejected: &[Rejected]) -> String {
    if rejected.is_empty() {
        return "no servers".into();
    }
    rejected
        .iter()
        .map(|r| format!("{}: {}", r.name, r.why))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A reachable replica with readable positions.
struct Replica<'a> {
    obs: &'a ServerObservation,
    received: MariaPos,
    applied: MariaPos,
    eligible: bool,
}

/// Chooses the replica to promote among `observations` (normally the latest snapshot's
/// servers; the failed primary is skipped as unreachable, or name it in `excluded`).
/// `priorities` gives some servers a priority (default 0; higher is preferred), used only
/// between replicas holding the same transactions. See the module documentation for the rule.
///
/// # Errors
///
/// [`NoCandidate`] when no replica is eligible, or every eligible one would lose transactions.
pub fn choose_candidate(
    observations: &[ServerObservation],
    priorities: &[(&str, i32)],
    excluded: &[&str],
) -> Result<Candidate, NoCandidate> {
    let priority = |name: &str| {
        priorities
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, p)| *p)
    };
    let mut rejected = Vec::new();
    let mut replicas = Vec::new();
    for o in observations {
        let reject = |why| Rejected {
            name: o.name.clone(),
            why,
        };
        if !o.reachable {
            rejected.push(reject(Rejection::Unreachable));
            continue;
        }
        let Some(st) = &o.replication else {
            rejected.push(reject(Rejection::NotAReplica));
            continue;
        };
        let (received, applied) = match positions(o, &st.gtid_io_pos) {
            Ok(p) => p,
            Err(why) => {
                rejected.push(reject(Rejection::NoPosition(why)));
                continue;
            }
        };
        let why = if excluded.contains(&o.name.as_str()) {
            Some(Rejection::Excluded)
        } else if st.sql_delay > 0 {
            Some(Rejection::Delayed(st.sql_delay))
        } else {
            None
        };
        let eligible = why.is_none();
        if let Some(why) = why {
            rejected.push(reject(why));
        }
        replicas.push(Replica {
            obs: o,
            received,
            applied,
            eligible,
        });
    }
    if !replicas.iter().any(|r| r.eligible) {
        return Err(NoCandidate::NoEligibleReplica { rejected });
    }

    // Holds everything every reachable replica received.
    let complete = |c: &Replica<'_>| replicas.iter().all(|r| c.received.contains(&r.received));
    let mut qualified: Vec<&Replica<'_>> = replicas
        .iter()
        .filter(|r| r.eligible && complete(r))
        .collect();
    if qualified.is_empty() {
        let best = replicas
            .iter()
            .filter(|r| r.eligible)
            .max_by(|a, b| {
                rank_key(a, &replicas, By::Received)
                    .cmp(&rank_key(b, &replicas, By::Received))
                    .then_with(|| b.obs.name.cmp(&a.obs.name))
            })
            .map(|r| r.obs.name.clone())
            .unwrap_or_default();
        let best_received = replicas
            .iter()
            .find(|r| r.obs.name == best)
            .map(|r| r.received.clone())
            .unwrap_or_default();
        let ahead = replicas
            .iter()
            .filter(|r| !best_received.contains(&r.received))
            .map(|r| r.obs.name.clone())
            .collect();
        return Err(NoCandidate::WouldLose {
            best,
            ahead,
            rejected,
        });
    }
    // Most applied, then priority, then name.
    qualified.sort_by(|a, b| {
        rank_key(b, &replicas, By::Applied)
            .cmp(&rank_key(a, &replicas, By::Applied))
            .then_with(|| priority(&b.obs.name).cmp(&priority(&a.obs.name)))
            .then_with(|| a.obs.name.cmp(&b.obs.name))
    });
    let chosen = qualified[0];
    for r in &replicas {
        if r.eligible && r.obs.name != chosen.obs.name {
            let why = if complete(r) {
                Rejection::RankedLower
            } else {
                let of = replicas
                    .iter()
                    .find(|x| !r.received.contains(&x.received))
                    .map_or_else(String::new, |x| x.obs.name.clone());
                Rejection::Behind { of }
            };
            rejected.push(Rejected {
                name: r.obs.name.clone(),
                why,
            });
        }
    }
    Ok(Candidate {
        name: chosen.obs.name.clone(),
        address: chosen.obs.address.clone(),
        received: chosen.received.clone(),
        applied: chosen.applied.clone(),
        priority: priority(&chosen.obs.name),
        others: rejected,
    })
}

/// Received and applied positions of a replica.
fn positions(o: &ServerObservation, io_pos: &str) -> Result<(MariaPos, MariaPos), String> {
    let Some(slave_pos) = &o.gtid_slave_pos else {
        return Err("gtid_slave_pos not read".into());
    };
    let applied = MariaPos::parse(slave_pos).map_err(|e| e.to_string())?;
    let mut received = MariaPos::parse(io_pos).map_err(|e| e.to_string())?;
    received.merge_max(&applied);
    Ok((received, applied))
}

/// Which position to rank by.
#[derive(Clone, Copy)]
enum By {
    Received,
    Applied,
}

impl By {
    fn pick<'r>(self, r: &'r Replica<'_>) -> &'r MariaPos {
        match self {
            By::Received => &r.received,
            By::Applied => &r.applied,
        }
    }
}

/// A total order on positions that agrees with containment: how many of the replicas'
/// positions (by `by`) this one contains, then the sum of its sequence numbers.
fn rank_key(r: &Replica<'_>, all: &[Replica<'_>], by: By) -> (usize, u128) {
    let mine = by.pick(r);
    let contained = all.iter().filter(|x| mine.contains(by.pick(x))).count();
    let sum = mine.iter().map(|g| u128::from(g.seq)).sum();
    (contained, sum)
}

#[cfg(test)]
mod tests;
