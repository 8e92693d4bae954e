//! Comparing histories by GTID: may an old primary rejoin, and what would be lost. Pure.
//!
//! Why not simply `new_primary.gtid_current_pos.contains(old.gtid_binlog_pos)`: containment
//! compares sequence numbers per domain and ignores server ids, and after a failover the new
//! primary's own transactions reuse the sequence numbers the old primary may have used for
//! transactions that never left it. Measured: old primary at `0-1-3` (an errant write after the
//! failover), new primary at `0-2-4` — contained by sequence number, yet `0-1-3` is not in the
//! new primary's binlog, and `START SLAVE` on the old primary fails with error 1236 ("the slave
//! has diverged"). So [`errant_transactions`] asks instead: has the new primary got the old
//! primary's *own* stream (same server id) at least as far?

use std::fmt;

use lagless_routing::gtid::{MariaGtid, MariaPos};

/// Consecutive transactions of one domain, all written by `server_id` (except, for ranges from
/// [`unapplied`], possibly earlier ones written by a previous primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GtidRange {
    pub domain: u32,
    pub server_id: u32,
    /// `None` when where the histories diverge cannot be told (the two servers share no
    /// server's stream in this domain): then every transaction of the old server up to
    /// `last_seq` is suspect.
    pub first_seq: Option<u64>,
    pub last_seq: u64,
}

impl GtidRange {
    /// Whether `gtid` falls in this range.
    pub fn contains(&self, gtid: MariaGtid) -> bool {
        gtid.domain == self.domain
            && gtid.server == self.server_id
            && gtid.seq <= self.last_seq
            && self.first_seq.is_none_or(|f| gtid.seq >= f)
    }

    /// Number of transactions, when the start is known.
    pub fn count(&self) -> Option<u64> {
        self.first_seq
            .map(|f| self.last_seq.saturating_sub(f).saturating_add(1))
    }
}

impl fmt::Display for GtidRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, s, l) = (self.domain, self.server_id, self.last_seq);
        match self.first_seq {
            Some(first) if first == l => write!(f, "{d}-{s}-{l}"),
            Some(first) => write!(f, "{d}-{s}-{first}..{d}-{s}-{l}"),
            None => write!(f, "{d}-{s}-{l} and earlier"),
        }
    }
}

/// The old primary's transactions that the new primary does not have: empty when the old
/// primary's history is a prefix of the new primary's, so that it may replicate from it.
///
/// Inputs: the old primary's `gtid_binlog_pos` (everything it ever wrote to its binlog); the
/// new primary's `gtid_current_pos` and `gtid_slave_pos` (the latter, kept after `RESET SLAVE
/// ALL`, is how far it replicated the old primary's stream before it was promoted).
///
/// Per domain of the old position, with `o` its last GTID: fine when the new primary's current
/// position is exactly `o`, or either of its positions has `o`'s server id with a sequence
/// number at least `o`'s (it replicated that server's stream past `o`; under
/// `gtid_strict_mode` a server's own stream in a domain is one sequence). Otherwise the range
/// after the furthest point of `o`'s stream the new primary has, up to `o`, is errant.
/// Conservative: histories that cannot be compared this way (no common server id in the
/// domain) are reported as errant, never the other way round.
pub fn errant_transactions(
    old_binlog: &MariaPos,
    new_current: &MariaPos,
    new_slave: &MariaPos,
) -> Vec<GtidRange> {
    let mut errant = Vec::new();
    for &o in old_binlog.iter() {
        let known = [new_current.get(o.domain), new_slave.get(o.domain)];
        if known[0] == Some(o) {
            continue;
        }
        // How far the new primary has the old server's own stream in this domain.
        let shared = known
            .iter()
            .flatten()
            .filter(|g| g.server == o.server)
            .map(|g| g.seq)
            .max();
        match shared {
            Some(seq) if seq >= o.seq => {}
            Some(seq) => errant.push(GtidRange {
                domain: o.domain,
                server_id: o.server,
                first_seq: Some(seq + 1),
                last_seq: o.seq,
            }),
            None => errant.push(GtidRange {
                domain: o.domain,
                server_id: o.server,
                first_seq: None,
                last_seq: o.seq,
            }),
        }
    }
    errant
}

/// What a replica received and did not apply: per domain of `received` ahead of `applied`,
/// from the first sequence number after `applied`'s to `received`'s (labelled with the server
/// id of `received`'s GTID).
pub fn unapplied(received: &MariaPos, applied: &MariaPos) -> Vec<GtidRange> {
    received
        .iter()
        .filter(|r| !applied.contains_gtid(**r))
        .map(|r| GtidRange {
            domain: r.domain,
            server_id: r.server,
            first_seq: Some(applied.seq(r.domain).map_or(1, |s| s + 1)),
            last_seq: r.seq,
        })
        .collect()
}

/// `ranges` as a comma-separated list.
pub(crate) fn show(ranges: &[GtidRange]) -> String {
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
