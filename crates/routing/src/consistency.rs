//! Consistency modes: when may a read run on a replica, given what the session (or anyone)
//! wrote and what is known of each replica. Pure: the proxy supplies the session's writes, the
//! monitor's view of the replicas and the time; the decision says "this replica", "this replica
//! after a check" or "the primary".

use std::time::Duration;

use crate::gtid::MariaPos;

pub use lagless_config::Consistency;

/// A position in the primary's binary log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BinlogPos {
    pub file: String,
    pub pos: u64,
}

/// `file:position`, as SHOW LAGLESS and the admin API print it.
impl std::fmt::Display for BinlogPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

impl BinlogPos {
    /// Binlog file names share a base and differ by a zero-padded sequence, so comparing
    /// (name, position) orders positions within one primary's history.
    pub fn at_or_past(&self, other: &BinlogPos) -> bool {
        (self.file.as_str(), self.pos) >= (other.file.as_str(), other.pos)
    }
}

/// The primary's binlog position as the monitor saw it, and when (proxy clock, ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogAt {
    pub pos: BinlogPos,
    pub observed_ms: u64,
}

/// Where the primary's binlog stream saw the last transaction end, and every GTID the binlog
/// holds up to there: a write whose GTID is `through` ends at or before `pos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedBinlog {
    pub pos: BinlogPos,
    pub through: MariaPos,
}

/// What the session wrote, as reads must see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteState {
    /// Time of the last write, in milliseconds on the proxy's clock.
    pub at_ms: Option<u64>,
    /// GTIDs of the session's writes (newest per domain), plus any causal token it was given.
    pub gtids: MariaPos,
    /// The primary's binlog position at or after the last write: the first position the
    /// monitor observed after the write (no round trip per write), once there is one.
    pub binlog: Option<BinlogPos>,
}

/// What is known of a replica, from the monitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaState {
    /// Executed GTIDs (gtid_current_pos).
    pub gtids: Option<MariaPos>,
    /// Executed position in the primary's binlog (Relay_Master_Log_File, Exec_Master_Log_Pos).
    pub exec: Option<BinlogPos>,
    /// Seconds_Behind_Master, None when NULL.
    pub seconds_behind: Option<u64>,
    /// Lag from the heartbeat table, when enabled.
    pub heartbeat_lag_ms: Option<u64>,
    /// At the monitor's last look, had it applied everything the primary had written then?
    /// A replica that was behind is most likely still behind: asking it about a newer write
    /// would only add a round trip before the primary answers.
    pub caught_up: Option<bool>,
}

/// What must happen before a read may run on a chosen replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaCheck {
    /// Nothing: read there.
    None,
    /// Ask the replica whether it has these GTIDs, waiting up to the timeout (zero: no wait).
    GtidWait { gtids: String, timeout: Duration },
    /// MASTER_POS_WAIT to this position, up to the timeout.
    PosWait { pos: BinlogPos, timeout: Duration },
    /// Hold the read until this time (milliseconds on the proxy clock).
    HoldUntil(u64),
}

/// The verdict for one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligibility {
    Yes(ReplicaCheck),
    /// Not this replica (lagging, or not known to have the write).
    No,
}

/// The inputs of a consistency decision besides the replica.
pub struct Freshness<'a> {
    pub mode: Consistency,
    pub write: &'a WriteState,
    /// The newest GTIDs committed through the proxy by anyone (for `global`).
    pub global: &'a MariaPos,
    pub now_ms: u64,
    /// The cluster's lag bound for every mode (`max_replica_lag`), if any.
    pub cluster_max_lag: Option<Duration>,
}

impl Freshness<'_> {
    /// Must every read go to the primary right now, whatever the replicas?
    pub fn primary_only(&self) -> bool {
        match self.mode {
            Consistency::Primary => true,
            Consistency::PrimaryAfterWrite(w) => self.since_write().is_some_and(|d| d < w),
            _ => false,
        }
    }

    fn since_write(&self) -> Option<Duration> {
        self.write
            .at_ms
            .map(|t| Duration::from_millis(self.now_ms.saturating_sub(t)))
    }

    fn within_lag(bound: Duration, r: &ReplicaState) -> bool {
        let lag = match (r.heartbeat_lag_ms, r.seconds_behind) {
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some(s)) => Duration::from_secs(s),
            // NULL: the SQL or IO thread is stopped; the replica's freshness is unknown.
            (None, None) => return false,
        };
        lag <= bound
    }

    /// May this replica serve the session's next read, and after what check?
    pub fn eligible(&self, replica: Option<&ReplicaState>, seen: Option<&MariaPos>) -> Eligibility {
        if let Some(bound) = self.cluster_max_lag {
            if !replica.is_some_and(|r| Self::within_lag(bound, r)) {
                return Eligibility::No;
            }
        }
        let wrote = self.write.at_ms.is_some() || !self.write.gtids.is_empty();
        let gtid_known = |need: &MariaPos| {
            need.is_empty()
                || replica
                    .and_then(|r| r.gtids.as_ref())
                    .is_some_and(|g| g.contains(need))
                || seen.is_some_and(|s| s.contains(need))
        };
        match self.mode {
            Consistency::Eventual => Eligibility::Yes(ReplicaCheck::None),
            Consistency::Primary => Eligibility::No,
            Consistency::PrimaryAfterWrite(_) => {
                if self.primary_only() {
                    Eligibility::No
                } else {
                    Eligibility::Yes(ReplicaCheck::None)
                }
            }
            Consistency::Delay(d) => match self.write.at_ms {
                Some(t) if self.now_ms < t + d.as_millis() as u64 => {
                    Eligibility::Yes(ReplicaCheck::HoldUntil(t + d.as_millis() as u64))
                }
                _ => Eligibility::Yes(ReplicaCheck::None),
            },
            Consistency::MaxLag(bound) => {
                if replica.is_some_and(|r| Self::within_lag(bound, r)) {
                    Eligibility::Yes(ReplicaCheck::None)
                } else {
                    Eligibility::No
                }
            }
            Consistency::Position => {
                if !wrote {
                    return Eligibility::Yes(ReplicaCheck::None);
                }
                match (&self.write.binlog, replica.and_then(|r| r.exec.as_ref())) {
                    // The write's position is not known yet (the monitor has not seen the
                    // primary since): no replica can be shown to have it.
                    (None, _) => Eligibility::No,
                    (Some(need), Some(exec)) if exec.at_or_past(need) => {
                        Eligibility::Yes(ReplicaCheck::None)
                    }
                    _ => Eligibility::No,
                }
            }
            Consistency::Gtid => {
                if gtid_known(&self.write.gtids) {
                    Eligibility::Yes(ReplicaCheck::None)
                } else if replica.and_then(|r| r.caught_up) == Some(false) {
                    Eligibility::No
                } else {
                    // Not known yet: ask the replica itself, without waiting.
                    Eligibility::Yes(ReplicaCheck::GtidWait {
                        gtids: self.write.gtids.to_string(),
                        timeout: Duration::ZERO,
                    })
                }
            }
            Consistency::GtidWait(timeout) => {
                if gtid_known(&self.write.gtids) {
                    Eligibility::Yes(ReplicaCheck::None)
                } else {
                    Eligibility::Yes(ReplicaCheck::GtidWait {
                        gtids: self.write.gtids.to_string(),
                        timeout,
                    })
                }
            }
            Consistency::PosWait(timeout) => match &self.write.binlog {
                None if wrote => Eligibility::No,
                None => Eligibility::Yes(ReplicaCheck::None),
                Some(pos) => {
                    if replica
                        .and_then(|r| r.exec.as_ref())
                        .is_some_and(|e| e.at_or_past(pos))
                    {
                        Eligibility::Yes(ReplicaCheck::None)
                    } else {
                        Eligibility::Yes(ReplicaCheck::PosWait {
                            pos: pos.clone(),
                            timeout,
                        })
                    }
                }
            },
            Consistency::Global => {
                let mut need = self.global.clone();
                need.merge_max(&self.write.gtids);
                if gtid_known(&need) {
                    Eligibility::Yes(ReplicaCheck::None)
                } else if replica.and_then(|r| r.caught_up) == Some(false) {
                    Eligibility::No
                } else {
                    Eligibility::Yes(ReplicaCheck::GtidWait {
                        gtids: need.to_string(),
                        timeout: Duration::ZERO,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
