//! Session-state change entries of an OK packet: `type (1 byte) | lenenc data`, repeated.

use crate::consts::*;
use crate::lenenc::Reader;
use crate::ProtocolError;

use super::OkPacket;

/// One session-state change. Byte slices borrow from the OK packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange<'a> {
    /// A tracked system variable's new value (e.g. `last_gtid`, `autocommit`).
    SystemVariable {
        name: &'a [u8],
        value: &'a [u8],
    },
    /// The current schema (`USE db`).
    Schema(&'a [u8]),
    /// Session state changed in a way that matters for reuse (true for "1").
    StateChange(bool),
    /// MySQL's session_track_gtids data: encoding byte and GTID string, raw.
    Gtids(&'a [u8]),
    TransactionCharacteristics(&'a [u8]),
    TransactionState(&'a [u8]),
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Iterates over the entries of `raw` (an [`OkPacket::session_state`]). After an error the
/// iterator ends.
pub fn session_changes(raw: &[u8]) -> SessionChanges<'_> {
    SessionChanges {
        r: Reader::new(raw),
        done: false,
    }
}

#[derive(Debug, Clone)]
pub struct SessionChanges<'a> {
    r: Reader<'a>,
    done: bool,
}

impl<'a> Iterator for SessionChanges<'a> {
    type Item = Result<SessionChange<'a>, ProtocolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.r.is_empty() {
            return None;
        }
        let item = next_change(&mut self.r);
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

fn next_change<'a>(r: &mut Reader<'a>) -> Result<SessionChange<'a>, ProtocolError> {
    let kind = r.u8()?;
    let data = r.lenenc_bytes()?;
    let mut d = Reader::new(data);
    Ok(match kind {
        SESSION_TRACK_SYSTEM_VARIABLES => SessionChange::SystemVariable {
            name: d.lenenc_bytes()?,
            value: d.lenenc_bytes()?,
        },
        SESSION_TRACK_SCHEMA => SessionChange::Schema(d.lenenc_bytes()?),
        // Servers send a bare "1"; accept a length-encoded "1" too.
        SESSION_TRACK_STATE_CHANGE => SessionChange::StateChange(match data {
            [flag] => *flag == b'1',
            _ => d.lenenc_bytes()? == b"1",
        }),
        SESSION_TRACK_GTIDS => SessionChange::Gtids(data),
        SESSION_TRACK_TRANSACTION_CHARACTERISTICS => {
            SessionChange::TransactionCharacteristics(data)
        }
        SESSION_TRACK_TRANSACTION_STATE => SessionChange::TransactionState(data),
        kind => SessionChange::Unknown { kind, data },
    })
}

/// The last non-empty `last_gtid` system variable in `ok`'s session state (MariaDB reports it
/// when `session_track_system_variables` includes `last_gtid`). Stops at malformed entries.
pub fn last_gtid(ok: &OkPacket) -> Option<&str> {
    let mut found = None;
    for change in session_changes(&ok.session_state) {
        match change {
            Ok(SessionChange::SystemVariable { name, value })
                if name.eq_ignore_ascii_case(b"last_gtid") && !value.is_empty() =>
            {
                found = std::str::from_utf8(value).ok().or(found);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    found
}
