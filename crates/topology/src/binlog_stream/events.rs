//! Pure parts of the binlog stream: framing of the dump connection's packets (skipping large
//! row events without buffering them), binlog event headers, the events the stream uses
//! (MariaDB GTID 0xA2, GTID list 0xA3, format description, rotate, heartbeat, and the XID and
//! query events that end a transaction's event group) and CRC32
//! checksums. No I/O.

use lagless_routing::gtid::MariaGtid;

/// Length of a binlog event header (v4): timestamp u32, type u8, server_id u32, event size u32,
/// next position u32, flags u16.
pub const HEADER_LEN: usize = 19;

pub const QUERY_EVENT: u8 = 0x02;
pub const ROTATE_EVENT: u8 = 0x04;
pub const FORMAT_DESCRIPTION_EVENT: u8 = 0x0f;
pub const XID_EVENT: u8 = 0x10;
pub const HEARTBEAT_LOG_EVENT: u8 = 0x1b;
/// MariaDB: binlog checkpoint.
pub const BINLOG_CHECKPOINT_EVENT: u8 = 0xa1;
/// MariaDB: the GTID that starts an event group (a transaction).
pub const GTID_EVENT: u8 = 0xa2;
/// MariaDB: the binlog state (one GTID per domain and server) at the start of a binlog file.
pub const GTID_LIST_EVENT: u8 = 0xa3;
/// GTID event flag: the group is this event and one more (a DDL or other statement that is
/// not part of a transaction), with no XID or COMMIT to end it.
pub const FL_STANDALONE: u8 = 0x01;
/// Header flag of events the server made up for the dump (the first rotate, ...): their
/// `log_pos` is not a place in the binlog.
pub const LOG_EVENT_ARTIFICIAL_F: u16 = 0x20;

/// Checksum algorithm byte of a format description event.
pub const CHECKSUM_OFF: u8 = 0;
pub const CHECKSUM_CRC32: u8 = 1;

/// Longest event the stream keeps in memory to parse (less than one 16 MiB packet). Only small events are parsed (GTID
/// events are tens of bytes); anything longer of an uninteresting type is skipped as it arrives.
pub const MAX_PARSED_EVENT: usize = 1 << 20;

/// A binlog event header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHeader {
    pub timestamp: u32,
    pub event_type: u8,
    /// The server that originally wrote the event (kept through replication).
    pub server_id: u32,
    pub event_size: u32,
    pub log_pos: u32,
    pub flags: u16,
}

impl EventHeader {
    pub fn parse(b: &[u8]) -> Option<EventHeader> {
        if b.len() < HEADER_LEN {
            return None;
        }
        Some(EventHeader {
            timestamp: u32_le(b, 0)?,
            event_type: b[4],
            server_id: u32_le(b, 5)?,
            event_size: u32_le(b, 9)?,
            log_pos: u32_le(b, 13)?,
            flags: u16::from_le_bytes([b[17], b[18]]),
        })
    }
}

/// What the stream makes of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A transaction's GTID (domain from the event, server id from the header), which starts
    /// its event group; `standalone`: the group is this event and the one after it.
    Gtid { gtid: MariaGtid, standalone: bool },
    /// A transaction's commit (the end of its group).
    Xid,
    /// A statement; `ends_group` when it is `COMMIT` or `ROLLBACK` (a group of
    /// non-transactional changes ends so).
    Query { ends_group: bool },
    /// The binlog state: one GTID per (domain, server) that appeared in earlier binlogs.
    GtidList(Vec<MariaGtid>),
    /// The checksum algorithm of the binlog the events that follow come from.
    FormatDescription { checksum: u8 },
    /// The dump moves to another binlog file (`position` in it).
    Rotate { file: String, position: u64 },
    /// The server has nothing new (sent after the heartbeat period of silence).
    Heartbeat,
    /// Any other event type.
    Other(u8),
}

/// Why an event could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("binlog event too short ({len} bytes) for its type {event_type:#04x}")]
    Truncated { event_type: u8, len: usize },
    #[error("binlog event of type {event_type:#04x}: checksum {got:#010x}, expected {want:#010x}")]
    Checksum { event_type: u8, got: u32, want: u32 },
    #[error("binlog event header says {said} bytes, packet carries {len}")]
    SizeMismatch { said: u32, len: usize },
}

/// Parses one event (header and body, as sent after the packet's leading 0x00). `checksum`
/// says whether events carry a CRC32 trailer (the binlog's `binlog_checksum` is CRC32); it
/// is verified on the events whose content is used (GTID, GTID list).
pub fn parse_event(ev: &[u8], checksum: bool) -> Result<(EventHeader, Event), EventError> {
    let header = EventHeader::parse(ev).ok_or(EventError::Truncated {
        event_type: ev.get(4).copied().unwrap_or(0),
        len: ev.len(),
    })?;
    let t = header.event_type;
    if header.event_size as usize != ev.len() {
        return Err(EventError::SizeMismatch {
            said: header.event_size,
            len: ev.len(),
        });
    }
    let truncated = || EventError::Truncated {
        event_type: t,
        len: ev.len(),
    };
    // The format description carries its own checksum setting, whatever the previous one was:
    // its algorithm byte sits just before the 4-byte checksum slot, which it always has.
    if t == FORMAT_DESCRIPTION_EVENT {
        let at = ev.len().checked_sub(5).ok_or_else(truncated)?;
        if at < HEADER_LEN + 2 {
            return Err(truncated());
        }
        return Ok((header, Event::FormatDescription { checksum: ev[at] }));
    }
    let body_end = if checksum {
        ev.len().checked_sub(4).filter(|&e| e >= HEADER_LEN)
    } else {
        Some(ev.len())
    }
    .ok_or_else(truncated)?;
    let body = &ev[HEADER_LEN..body_end];
    let verify = || -> Result<(), EventError> {
        if !checksum {
            return Ok(());
        }
        let want = crc32(&ev[..body_end]);
        let got = u32_le(ev, body_end).ok_or_else(truncated)?;
        if got == want {
            Ok(())
        } else {
            Err(EventError::Checksum {
                event_type: t,
                got,
                want,
            })
        }
    };
    let event = match t {
        GTID_EVENT => {
            // seq_no u64, domain_id u32, flags u8, then optional fields.
            let seq = u64_le(body, 0).ok_or_else(truncated)?;
            let domain = u32_le(body, 8).ok_or_else(truncated)?;
            let flags = *body.get(12).ok_or_else(truncated)?;
            verify()?;
            Event::Gtid {
                gtid: MariaGtid::new(domain, header.server_id, seq),
                standalone: flags & FL_STANDALONE != 0,
            }
        }
        GTID_LIST_EVENT => {
            // count u32 (low 28 bits; the high 4 are flags), then count x (domain u32,
            // server_id u32, seq_no u64).
            let count = (u32_le(body, 0).ok_or_else(truncated)? & 0x0fff_ffff) as usize;
            let need = count.checked_mul(16).and_then(|n| n.checked_add(4));
            if need.is_none_or(|n| body.len() < n) {
                return Err(truncated());
            }
            verify()?;
            let list = (0..count)
                .map(|i| {
                    let at = 4 + 16 * i;
                    MariaGtid::new(
                        u32_le(body, at).unwrap_or(0),
                        u32_le(body, at + 4).unwrap_or(0),
                        u64_le(body, at + 8).unwrap_or(0),
                    )
                })
                .collect();
            Event::GtidList(list)
        }
        ROTATE_EVENT => {
            let position = u64_le(body, 0).ok_or_else(truncated)?;
            let file = String::from_utf8_lossy(&body[8..]).into_owned();
            Event::Rotate { file, position }
        }
        HEARTBEAT_LOG_EVENT => Event::Heartbeat,
        XID_EVENT => Event::Xid,
        QUERY_EVENT => {
            // thread_id u32, exec_time u32, schema length u8, error code u16, status-variables
            // length u16, status variables, schema, 0x00, then the statement.
            let schema_len = usize::from(*body.get(8).ok_or_else(truncated)?);
            let vars_len = usize::from(u16::from_le_bytes(
                body.get(11..13)
                    .ok_or_else(truncated)?
                    .try_into()
                    .unwrap_or([0; 2]),
            ));
            let text = body
                .get(13 + vars_len + schema_len + 1..)
                .ok_or_else(truncated)?;
            verify()?;
            let word = |w: &[u8]| text.trim_ascii().eq_ignore_ascii_case(w);
            Event::Query {
                ends_group: word(b"COMMIT") || word(b"ROLLBACK"),
            }
        }
        other => Event::Other(other),
    };
    Ok((header, event))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_le(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// CRC-32 (IEEE 802.3, the one `binlog_checksum = CRC32` uses), bitwise with a small table.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// One packet of the dump connection, as far as the stream cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An event (without the leading 0x00), small enough to parse.
    Event(Vec<u8>),
    /// An event that was skipped (too long, or split over several packets): its type.
    Skipped(u8),
    /// The server's ERR packet (the whole payload).
    Err(Vec<u8>),
    /// EOF: the server ended the dump.
    Eof,
}

/// The dump connection's read buffer: bytes from `start` on are unread. Consumed bytes are
/// dropped in one move before the next read ([`StreamBuf::compact`]), not one per packet.
#[derive(Debug, Default)]
pub struct StreamBuf {
    pub data: Vec<u8>,
    start: usize,
}

impl StreamBuf {
    pub fn unread(&self) -> &[u8] {
        &self.data[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
    }

    /// Drops the consumed bytes (call before reading more into `data`).
    pub fn compact(&mut self) {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Splits the dump connection's byte stream into frames. Events of types the stream does not
/// parse are dropped as their bytes arrive, so a 1 GB row event never sits in memory.
#[derive(Debug, Default)]
pub struct Framer {
    /// Bytes of the current packet still to drop.
    skip: usize,
    /// The packet being dropped is 0xFFFFFF long: a continuation packet follows, to drop too.
    continues: bool,
}

/// Event types whose content the stream reads.
fn parsed_type(t: u8) -> bool {
    matches!(
        t,
        GTID_EVENT
            | XID_EVENT
            | QUERY_EVENT
            | GTID_LIST_EVENT
            | FORMAT_DESCRIPTION_EVENT
            | ROTATE_EVENT
            | HEARTBEAT_LOG_EVENT
    )
}

const MAX_PACKET: usize = 0xff_ffff;

impl Framer {
    /// Takes the next frame out of `buf`, or `None` when more bytes are needed. Consumes the
    /// bytes of skipped packets as they arrive (then returns `None` until the next packet).
    pub fn next(&mut self, buf: &mut StreamBuf) -> Option<Frame> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.unread().len());
                buf.consume(n);
                self.skip -= n;
                if self.skip > 0 {
                    return None;
                }
            }
            let b = buf.unread();
            if b.len() < 4 {
                return None;
            }
            let len = usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
            if self.continues {
                // A continuation of a dropped packet: drop it too.
                self.continues = len == MAX_PACKET;
                self.skip = 4 + len;
                continue;
            }
            let payload = &b[4..];
            let whole = b.len() >= 4 + len;
            // The event type sits at payload offset 5 (0x00, then timestamp u32).
            let event_type = payload.get(5).copied();
            let keep = match payload.first().copied() {
                None => return None,
                Some(0x00) => match event_type {
                    None if len >= 6 => return None,
                    None => false,
                    Some(t) => len <= MAX_PARSED_EVENT + 1 && parsed_type(t),
                },
                Some(0xfe) if len < 9 => {
                    if !whole {
                        return None;
                    }
                    buf.consume(4 + len);
                    return Some(Frame::Eof);
                }
                Some(0xff) if len <= MAX_PARSED_EVENT => {
                    if !whole {
                        return None;
                    }
                    let p = b[4..4 + len].to_vec();
                    buf.consume(4 + len);
                    return Some(Frame::Err(p));
                }
                Some(_) => false,
            };
            if keep {
                if !whole {
                    return None;
                }
                let ev = b[5..4 + len].to_vec();
                buf.consume(4 + len);
                return Some(Frame::Event(ev));
            }
            self.skip = 4 + len;
            self.continues = len == MAX_PACKET;
            return Some(Frame::Skipped(event_type.unwrap_or(0)));
        }
    }
}
