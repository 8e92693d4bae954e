//! OK, ERR and EOF packets.
//!
//! With CLIENT_SESSION_TRACK the OK packet's info is a length-encoded string followed, when
//! SERVER_SESSION_STATE_CHANGED is set, by the session-state changes ([`session_changes`]).
//! MariaDB ends the packet right after the warnings when nothing changed.

mod session;

pub use session::{last_gtid, session_changes, SessionChange, SessionChanges};

use bytes::BufMut;

use crate::consts::*;
use crate::lenenc::{put_lenenc_bytes, put_lenenc_int, Reader};
use crate::ProtocolError;

pub const OK_HEADER: u8 = 0x00;
pub const EOF_HEADER: u8 = 0xfe;
pub const ERR_HEADER: u8 = 0xff;

/// An OK packet (header 0x00, or 0xFE when it ends a result set under CLIENT_DEPRECATE_EOF).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OkPacket {
    pub header: u8,
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: Vec<u8>,
    /// Session-state change entries without their outer length (see [`session_changes`]).
    pub session_state: Vec<u8>,
}

impl OkPacket {
    pub fn parse(payload: &[u8], capabilities: u64) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let header = r.u8()?;
        if header != OK_HEADER && header != EOF_HEADER {
            return Err(ProtocolError::Malformed("not an OK packet"));
        }
        let mut ok = Self {
            header,
            affected_rows: r.lenenc_int()?,
            last_insert_id: r.lenenc_int()?,
            ..Self::default()
        };
        if capabilities & CLIENT_PROTOCOL_41 != 0 {
            ok.status = r.u16()?;
            ok.warnings = r.u16()?;
        } else if capabilities & CLIENT_TRANSACTIONS != 0 {
            ok.status = r.u16()?;
        }
        if capabilities & CLIENT_SESSION_TRACK != 0 {
            if !r.is_empty() {
                ok.info = r.lenenc_bytes()?.to_vec();
            }
            if ok.status & SERVER_SESSION_STATE_CHANGED != 0 && !r.is_empty() {
                ok.session_state = r.lenenc_bytes()?.to_vec();
            }
        } else {
            // The protocol documents string<EOF> here, but MariaDB and MySQL servers write the
            // message length-encoded (net_store_data); accept both.
            let rest = r.rest();
            let mut lenenc = Reader::new(rest);
            ok.info = match lenenc.lenenc_bytes() {
                Ok(msg) if lenenc.is_empty() => msg.to_vec(),
                _ => rest.to_vec(),
            };
        }
        Ok(ok)
    }

    pub fn encode(&self, capabilities: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.info.len() + self.session_state.len());
        out.put_u8(self.header);
        put_lenenc_int(&mut out, self.affected_rows);
        put_lenenc_int(&mut out, self.last_insert_id);
        if capabilities & CLIENT_PROTOCOL_41 != 0 {
            out.put_u16_le(self.status);
            out.put_u16_le(self.warnings);
        } else if capabilities & CLIENT_TRANSACTIONS != 0 {
            out.put_u16_le(self.status);
        }
        if capabilities & CLIENT_SESSION_TRACK != 0 {
            let state_changed = self.status & SERVER_SESSION_STATE_CHANGED != 0;
            if !self.info.is_empty() || state_changed {
                put_lenenc_bytes(&mut out, &self.info);
            }
            if state_changed {
                put_lenenc_bytes(&mut out, &self.session_state);
            }
        } else if !self.info.is_empty() {
            // Length-encoded, as servers send it and as drivers (mysql_common) parse it.
            put_lenenc_bytes(&mut out, &self.info);
        }
        out
    }

    /// The `last_gtid` system variable reported in this packet's session state, if any.
    pub fn last_gtid(&self) -> Option<&str> {
        last_gtid(self)
    }
}

/// Rewrites an OK packet from a backend connection that negotiated CLIENT_SESSION_TRACK for a
/// client that did not: drops the session state and clears SERVER_SESSION_STATE_CHANGED; the info
/// stays length-encoded, as servers send it. `capabilities` supplies the other flags (PROTOCOL_41,
/// TRANSACTIONS); SESSION_TRACK in it is ignored. `None` when the packet needs no change or is
/// not an OK packet.
pub fn strip_session_state(payload: &[u8], capabilities: u64) -> Option<Vec<u8>> {
    let caps = capabilities | CLIENT_SESSION_TRACK;
    let mut ok = OkPacket::parse(payload, caps).ok()?;
    if ok.status & SERVER_SESSION_STATE_CHANGED == 0 && ok.info.is_empty() {
        // Ends after the warnings (or with an empty lenenc info): valid for either side.
        if ok.encode(caps) == payload {
            return None;
        }
    }
    ok.status &= !SERVER_SESSION_STATE_CHANGED;
    ok.session_state.clear();
    Some(ok.encode(caps & !CLIENT_SESSION_TRACK))
}

/// An ERR packet (header 0xFF). Always 4.1 format with the '#' SQLSTATE marker when encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    pub sql_state: [u8; 5],
    pub message: String,
}

impl ErrPacket {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code,
            sql_state: code.sql_state,
            message: message.into(),
        }
    }

    /// Parses an ERR packet; a missing SQLSTATE marker gives "HY000".
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8()? != ERR_HEADER {
            return Err(ProtocolError::Malformed("not an ERR packet"));
        }
        let code = r.u16()?;
        let mut sql_state = *b"HY000";
        if r.peek() == Some(b'#') && r.remaining() >= 6 {
            r.skip(1)?;
            sql_state = r.array()?;
        }
        let message = String::from_utf8_lossy(r.rest()).into_owned();
        Ok(Self {
            code,
            sql_state,
            message,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.message.len());
        out.put_u8(ERR_HEADER);
        out.put_u16_le(self.code);
        out.put_u8(b'#');
        out.put_slice(&self.sql_state);
        out.put_slice(self.message.as_bytes());
        out
    }

    pub fn sql_state_str(&self) -> String {
        String::from_utf8_lossy(&self.sql_state).into_owned()
    }
}

/// The EOF packet of the pre-DEPRECATE_EOF protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: u16,
}

impl EofPacket {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        if !is_eof_packet(payload) {
            return Err(ProtocolError::Malformed("not an EOF packet"));
        }
        let mut r = Reader::new(payload.get(1..).unwrap_or_default());
        if r.is_empty() {
            return Ok(Self::default()); // pre-4.1
        }
        Ok(Self {
            warnings: r.u16()?,
            status: r.u16()?,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5);
        out.put_u8(EOF_HEADER);
        out.put_u16_le(self.warnings);
        out.put_u16_le(self.status);
        out
    }
}

/// 0xFE and shorter than 9 bytes: an EOF packet, never a row (a row starting with 0xFE carries an
/// 8-byte length).
pub fn is_eof_packet(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < 9
}

/// 0xFE and shorter than 0xFFFFFF: the OK that ends a result set under CLIENT_DEPRECATE_EOF.
pub fn is_ok_terminator(payload: &[u8]) -> bool {
    payload.first() == Some(&EOF_HEADER) && payload.len() < 0xFF_FFFF
}

pub fn is_ok_packet(payload: &[u8]) -> bool {
    payload.first() == Some(&OK_HEADER)
}

pub fn is_err_packet(payload: &[u8]) -> bool {
    payload.first() == Some(&ERR_HEADER)
}

#[cfg(test)]
mod tests;
