//! Where a command's response ends, packet by packet, without buffering it.
//!
//! The forwarder shows the tracker each logical packet's first bytes (as many as
//! [`ResponseTracker::bytes_needed`] asks for) and its length; the tracker answers what the packet
//! is and whether the response is complete. Rows and column definitions need one byte, so a result
//! set of any size streams through with a fixed buffer. OK, EOF and ERR packets are small and are
//! shown whole, so their status flags (transaction state, more results, cursor) are read here.

use crate::ProtocolError;

const STATUS_MORE_RESULTS: u16 = 0x0008;
const STATUS_CURSOR_EXISTS: u16 = 0x0040;

/// The shape of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// COM_QUERY, COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request, or result sets, possibly several.
    Query,
    /// COM_STMT_PREPARE: prepare-OK, parameter and column definitions; or ERR.
    Prepare,
    /// COM_STMT_FETCH: binary rows then a terminator; or ERR.
    Fetch,
    /// COM_FIELD_LIST: column definitions then a terminator; or ERR.
    FieldList,
    /// Exactly one packet: COM_PING, COM_INIT_DB, COM_STATISTICS, COM_SET_OPTION, COM_STMT_RESET,
    /// COM_RESET_CONNECTION.
    Single,
}

/// What a packet of the response was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// An OK packet (header 0x00, or 0xFE ending rows under CLIENT_DEPRECATE_EOF).
    Ok,
    Err,
    /// A classic EOF packet (0xFE, fewer than 9 bytes).
    Eof,
    /// The server asks the client for a file (LOAD DATA LOCAL INFILE).
    LocalInfile,
    ColumnCount,
    ColumnDef,
    Row,
    /// The first packet of a successful COM_STMT_PREPARE.
    PrepareOk {
        statement_id: u32,
        columns: u16,
        params: u16,
    },
    ParamDef,
    /// COM_STATISTICS' text.
    Other,
}

/// The tracker's answer for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: PacketKind,
    /// The response is complete after this packet.
    pub done: bool,
    /// Server status flags, for OK and EOF packets.
    pub status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First packet of a (next) result of a query.
    ResultStart,
    Columns {
        left: u64,
    },
    ColumnsEof,
    Rows,
    PrepareStart,
    /// Definitions still to come after a prepare-OK, in this order.
    PrepareDefs {
        params: u16,
        param_eof: bool,
        columns: u16,
        column_eof: bool,
    },
    FieldList,
    Single,
    Finished,
}

/// Follows one command's response. Create one per command.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    state: State,
    deprecate_eof: bool,
}

impl ResponseTracker {
    /// `deprecate_eof`: whether CLIENT_DEPRECATE_EOF was negotiated on the connection that
    /// produces the response.
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let state = match expect {
            Expect::Query => State::ResultStart,
            Expect::Prepare => State::PrepareStart,
            Expect::Fetch => State::Rows,
            Expect::FieldList => State::FieldList,
            Expect::Single => State::Single,
        };
        ResponseTracker {
            state,
            deprecate_eof,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// How many payload bytes the tracker must see, given the packet's first byte and length.
    /// Rows and definitions need only their first byte; status-bearing packets are shown whole.
    pub fn bytes_needed(&self, first: u8, payload_len: usize) -> usize {
        let whole = match self.state {
            State::Rows | State::FieldList => {
                first == 0xFF || self.is_terminator(first, payload_len)
            }
            State::Columns { .. } => false,
            State::PrepareDefs { .. } => first == 0xFE && payload_len < 9,
            _ => true,
        };
        if whole {
            payload_len
        } else {
            payload_len.min(1)
        }
    }

    /// Whether a packet starting with `first` is a plain row of the result set being read: the
    /// tracker's answer for it would be [`PacketKind::Row`], not done, no status, no change of
    /// state. Lets the forwarder skip rows without calling [`Self::on_packet`].
    #[inline]
    pub fn is_row(&self, first: u8, payload_len: usize) -> bool {
        self.state == State::Rows && first != 0xFF && !self.is_terminator(first, payload_len)
    }

    fn is_terminator(&self, first: u8, len: usize) -> bool {
        first == 0xFE
            && if self.deprecate_eof {
                len < 0xFF_FFFF
            } else {
                len < 9
            }
    }

    /// Takes the next logical packet: `head` holds at least `bytes_needed` bytes of its payload,
    /// `payload_len` is its full length (first chunk's length for a split packet).
    ///
    /// # Errors
    /// A packet that cannot occur at this point of the response (a misbehaving server, or
    /// a tracker fed the wrong command): the connection should be dropped.
    pub fn on_packet(&mut self, head: &[u8], payload_len: usize) -> Result<Event, ProtocolError> {
        let Some(&first) = head.first() else {
            return Err(unexpected("empty packet in a response"));
        };
        let ev = |kind, done, status| Ok(Event { kind, done, status });
        match self.state {
            State::Finished => Err(unexpected("packet after the end of the response")),
            State::Single => {
                self.state = State::Finished;
                let kind = match first {
                    0x00 => PacketKind::Ok,
                    0xFF => PacketKind::Err,
                    0xFE if payload_len < 9 && !self.deprecate_eof => PacketKind::Eof,
                    0xFE => PacketKind::Ok,
                    _ => PacketKind::Other,
                };
                let status = match kind {
                    PacketKind::Ok => ok_status(head),
                    PacketKind::Eof => eof_status(head),
                    _ => None,
                };
                ev(kind, true, status)
            }
            State::ResultStart => match first {
                0x00 => self.after_status(PacketKind::Ok, ok_status(head)),
                0xFF => self.finish(PacketKind::Err),
                0xFB => ev(PacketKind::LocalInfile, false, None),
                _ => {
                    let (n, _) =
                        read_lenenc_int(head).ok_or_else(|| unexpected("bad column count"))?;
                    if n == 0 {
                        return Err(unexpected("zero column count"));
                    }
                    self.state = State::Columns { left: n };
                    ev(PacketKind::ColumnCount, false, None)
                }
            },
            State::Columns { left } => {
                self.state = match left - 1 {
                    0 if self.deprecate_eof => State::Rows,
                    0 => State::ColumnsEof,
                    l => State::Columns { left: l },
                };
                ev(PacketKind::ColumnDef, false, None)
            }
            State::ColumnsEof => match first {
                0xFE if payload_len < 9 => {
                    let status = eof_status(head);
                    if status.is_some_and(|s| s & STATUS_CURSOR_EXISTS != 0) {
                        // A cursor was opened: rows come later through COM_STMT_FETCH.
                        self.state = State::Finished;
                        return ev(PacketKind::Eof, true, status);
                    }
                    self.state = State::Rows;
                    ev(PacketKind::Eof, false, status)
                }
                0xFF => self.finish(PacketKind::Err),
                _ => Err(unexpected("expected EOF after column definitions")),
            },
            State::Rows => match first {
                0xFF => self.finish(PacketKind::Err),
                _ if self.is_terminator(first, payload_len) => {
                    let (kind, status) = if self.deprecate_eof {
                        (PacketKind::Ok, ok_status(head))
                    } else {
                        (PacketKind::Eof, eof_status(head))
                    };
                    self.after_status(kind, status)
                }
                _ => ev(PacketKind::Row, false, None),
            },
            State::FieldList => match first {
                0xFF => self.finish(PacketKind::Err),
                _ if self.is_terminator(first, payload_len) => {
                    self.state = State::Finished;
                    let (kind, status) = if self.deprecate_eof {
                        (PacketKind::Ok, ok_status(head))
                    } else {
                        (PacketKind::Eof, eof_status(head))
                    };
                    ev(kind, true, status)
                }
                _ => ev(PacketKind::ColumnDef, false, None),
            },
            State::PrepareStart => match first {
                0xFF => self.finish(PacketKind::Err),
                0x00 if head.len() >= 9 => {
                    let statement_id = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
                    let columns = u16::from_le_bytes([head[5], head[6]]);
                    let params = u16::from_le_bytes([head[7], head[8]]);
                    let classic = !self.deprecate_eof;
                    self.state = State::PrepareDefs {
                        params,
                        param_eof: classic && params > 0,
                        columns,
                        column_eof: classic && columns > 0,
                    };
                    let done = self.prepare_finish_if_empty();
                    ev(
                        PacketKind::PrepareOk {
                            statement_id,
                            columns,
                            params,
                        },
                        done,
                        None,
                    )
                }
                _ => Err(unexpected("bad prepare response")),
            },
            State::PrepareDefs {
                mut params,
                mut param_eof,
                mut columns,
                mut column_eof,
            } => {
                let is_eof = first == 0xFE && payload_len < 9;
                let kind = if params > 0 {
                    params -= 1;
                    PacketKind::ParamDef
                } else if param_eof {
                    param_eof = false;
                    PacketKind::Eof
                } else if columns > 0 {
                    columns -= 1;
                    PacketKind::ColumnDef
                } else {
                    column_eof = false;
                    PacketKind::Eof
                };
                if (kind == PacketKind::Eof) != is_eof {
                    return Err(unexpected(
                        "prepare definitions and EOF packets out of order",
                    ));
                }
                self.state = State::PrepareDefs {
                    params,
                    param_eof,
                    columns,
                    column_eof,
                };
                let done = self.prepare_finish_if_empty();
                ev(kind, done, if is_eof { eof_status(head) } else { None })
            }
        }
    }

    /// Ends the response once no prepare definitions are left; true when finished.
    fn prepare_finish_if_empty(&mut self) -> bool {
        if let State::PrepareDefs {
            params: 0,
            param_eof: false,
            columns: 0,
            column_eof: false,
        } = self.state
        {
            self.state = State::Finished;
        }
        self.state == State::Finished
    }

    fn after_status(
        &mut self,
        kind: PacketKind,
        status: Option<u16>,
    ) -> Result<Event, ProtocolError> {
        let more = status.is_some_and(|s| s & STATUS_MORE_RESULTS != 0);
        self.state = if more {
            State::ResultStart
        } else {
            State::Finished
        };
        Ok(Event {
            kind,
            done: !more,
            status,
        })
    }

    fn finish(&mut self, kind: PacketKind) -> Result<Event, ProtocolError> {
        self.state = State::Finished;
        Ok(Event {
            kind,
            done: true,
            status: None,
        })
    }
}

fn unexpected(what: &'static str) -> ProtocolError {
    ProtocolError::UnexpectedPacket(what)
}

/// Status flags of an OK packet (0x00 or 0xFE header): after two length-encoded integers.
fn ok_status(p: &[u8]) -> Option<u16> {
    let rest = p.get(1..)?;
    let (_, n1) = read_lenenc_int(rest)?;
    let rest = rest.get(n1..)?;
    let (_, n2) = read_lenenc_int(rest)?;
    let s = rest.get(n2..n2 + 2)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// A length-encoded integer and how many bytes it took; None when truncated or 0xFB/0xFF.
fn read_lenenc_int(p: &[u8]) -> Option<(u64, usize)> {
    let (&b, rest) = p.split_first()?;
    let wide = |n: usize| -> Option<(u64, usize)> {
        let bytes = rest.get(..n)?;
        let mut v = 0u64;
        for (i, byte) in bytes.iter().enumerate() {
            v |= u64::from(*byte) << (8 * i);
        }
        Some((v, n + 1))
    };
    match b {
        0..=0xFA => Some((u64::from(b), 1)),
        0xFC => wide(2),
        0xFD => wide(3),
        0xFE => wide(8),
        _ => None,
    }
}

/// Status flags of a classic EOF packet: 0xFE, warnings (2), status (2).
fn eof_status(p: &[u8]) -> Option<u16> {
    let s = p.get(3..5)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

#[cfg(test)]
mod tests;
