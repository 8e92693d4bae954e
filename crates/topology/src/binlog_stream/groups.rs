//! Where each transaction ends in a server's binlog, from the events of its dump. The
//! primary's stream so gives a write's binlog position (for the `position` and `pos_wait`
//! consistency modes) milliseconds after the commit, where polling gives it at the next
//! round. Pure: fed parsed events, no I/O.

use lagless_routing::consistency::{BinlogPos, StreamedBinlog};
use lagless_routing::gtid::{MariaGtid, MariaPos};

use super::events::{Event, EventHeader, LOG_EVENT_ARTIFICIAL_F};

/// Follows event groups. A group starts with its GTID event and ends with its XID, with a
/// `COMMIT` or `ROLLBACK` query, with the one statement of a standalone group (DDL), or at the
/// latest where the next group starts: an end it does not recognise (an XA PREPARE, a skipped
/// oversized statement) is found late, never early, so a published position is never short
/// of a GTID it claims.
#[derive(Debug, Default)]
pub struct GroupTracker {
    file: Option<String>,
    open: Option<OpenGroup>,
    ended: MariaPos,
    at: Option<BinlogPos>,
}

#[derive(Debug, Clone, Copy)]
struct OpenGroup {
    gtid: MariaGtid,
    standalone: bool,
}

impl GroupTracker {
    /// `before`: the binlog's GTIDs before the first event the dump sends (the dump starts
    /// after them, so they end before any position this tracker finds).
    pub fn new(before: MariaPos) -> Self {
        GroupTracker {
            ended: before,
            ..Default::default()
        }
    }

    /// Takes in one event. True when a group ended (the published position moved).
    pub fn event(&mut self, h: &EventHeader, e: &Event) -> bool {
        // Events the server makes up for the dump carry no place in the binlog.
        let real = h.flags & LOG_EVENT_ARTIFICIAL_F == 0 && h.log_pos != 0;
        match e {
            Event::Rotate { file, .. } => {
                // No group spans two files: a real rotate ends the old file.
                let moved = real && self.close(h.log_pos);
                self.file = Some(file.clone());
                moved
            }
            Event::Gtid { gtid, standalone } => {
                // A group still open ended where this one starts.
                let moved = real && self.close(h.log_pos.saturating_sub(h.event_size));
                self.open = Some(OpenGroup {
                    gtid: *gtid,
                    standalone: *standalone,
                });
                moved
            }
            Event::Xid if real => self.close(h.log_pos),
            Event::Query { ends_group } if real => {
                (*ends_group || self.open.is_some_and(|o| o.standalone)) && self.close(h.log_pos)
            }
            _ => false,
        }
    }

    fn close(&mut self, end: u32) -> bool {
        let (Some(open), Some(file)) = (self.open, self.file.as_ref()) else {
            return false;
        };
        self.open = None;
        self.ended.insert(open.gtid);
        self.at = Some(BinlogPos {
            file: file.clone(),
            pos: u64::from(end),
        });
        true
    }

    /// The end of the last group that ended, with every GTID in the binlog up to there;
    /// `None` until one ended.
    pub fn position(&self) -> Option<StreamedBinlog> {
        self.at.as_ref().map(|pos| StreamedBinlog {
            pos: pos.clone(),
            through: self.ended.clone(),
        })
    }
}
