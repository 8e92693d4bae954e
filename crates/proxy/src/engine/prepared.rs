//! Prepared statements across servers. The client sees one statement id per prepare; Lagless
//! prepares the statement lazily on each server that executes it and maps the client's id to
//! that server's own. Parameter types and long data are kept so that an execution can move to
//! another server (a read on a replica, then the same statement inside a transaction on the
//! primary) without the client noticing.

use std::collections::HashMap;

use lagless_protocol::ProtocolError;
use lagless_routing::ServerRef;

/// One client-side prepared statement.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: Box<str>,
    pub params: u16,
    /// Server → that server's statement id.
    pub on: Vec<(ServerRef, u32)>,
    /// Servers that have received the parameter types.
    pub typed_on: Vec<ServerRef>,
    /// The types the client last bound (2 bytes per parameter).
    pub types: Option<Vec<u8>>,
    /// COM_STMT_SEND_LONG_DATA chunks since the last execution: (parameter, bytes).
    pub long_data: Vec<(u16, Vec<u8>)>,
    /// Where the last execution ran: a cursor lives there.
    pub last: Option<ServerRef>,
}

impl Prepared {
    pub fn backend_id(&self, r: ServerRef) -> Option<u32> {
        self.on.iter().find(|(s, _)| *s == r).map(|(_, id)| *id)
    }
}

/// The session's prepared statements by client id.
#[derive(Debug, Default)]
pub struct Statements {
    next_id: u32,
    pub map: HashMap<u32, Prepared>,
}

impl Statements {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Registers a statement prepared on `server` as `backend_id`; returns the client's id.
    pub fn add(&mut self, sql: Box<str>, params: u16, server: ServerRef, backend_id: u32) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        self.map.insert(
            id,
            Prepared {
                sql,
                params,
                on: vec![(server, backend_id)],
                typed_on: Vec::new(),
                types: None,
                long_data: Vec::new(),
                last: None,
            },
        );
        id
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// The statement id of a COM_STMT_* payload (bytes 1..5).
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(payload.get(1..5)?.try_into().ok()?))
}

/// A copy of a COM_STMT_* payload addressed to `backend_id`.
pub fn with_id(payload: &[u8], backend_id: u32) -> Vec<u8> {
    let mut out = payload.to_vec();
    if out.len() >= 5 {
        out[1..5].copy_from_slice(&backend_id.to_le_bytes());
    }
    out
}

/// Rewrites a COM_STMT_EXECUTE for a server: its statement id, and the parameter types when
/// the client did not resend them (new_params_bound = 0) but this server has never seen them.
/// Records the types when the client sends them.
///
/// # Errors
/// A payload too short for its parameter count.
pub fn rewrite_execute(
    payload: &[u8],
    stmt: &mut Prepared,
    server: ServerRef,
    backend_id: u32,
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = with_id(payload, backend_id);
    if stmt.params == 0 {
        return Ok(out);
    }
    let n = usize::from(stmt.params);
    // command(1) id(4) flags(1) iterations(4) null bitmap, then new_params_bound.
    let flag_at = 10 + n.div_ceil(8);
    let flag = *payload.get(flag_at).ok_or(ProtocolError::Truncated)?;
    if flag == 1 {
        let types = payload
            .get(flag_at + 1..flag_at + 1 + 2 * n)
            .ok_or(ProtocolError::Truncated)?;
        stmt.types = Some(types.to_vec());
        stmt.typed_on.clear();
    } else if !stmt.typed_on.contains(&server) {
        let types = stmt.types.as_ref().ok_or(ProtocolError::Malformed(
            "execution without parameter types",
        ))?;
        let mut rebuilt = Vec::with_capacity(out.len() + types.len());
        rebuilt.extend_from_slice(&out[..flag_at]);
        rebuilt.push(1);
        rebuilt.extend_from_slice(types);
        rebuilt.extend_from_slice(&out[flag_at + 1..]);
        out = rebuilt;
    }
    if !stmt.typed_on.contains(&server) {
        stmt.typed_on.push(server);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ServerRef = ServerRef {
        cluster: 0,
        server: 1,
    };
    const B: ServerRef = ServerRef {
        cluster: 0,
        server: 0,
    };

    fn execute(id: u32, bound: bool) -> Vec<u8> {
        let mut p = vec![0x17];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(0); // null bitmap for 2 params
        p.push(u8::from(bound));
        if bound {
            p.extend_from_slice(&[0x03, 0x00, 0xfe, 0x00]); // LONG, STRING
        }
        p.extend_from_slice(&7i32.to_le_bytes());
        p.extend_from_slice(&[1, b'x']);
        p
    }

    #[test]
    fn types_follow_an_execution_to_a_new_server() {
        let mut stmts = Statements::default();
        let id = stmts.add("SELECT ?, ?".into(), 2, A, 50);
        let stmt = stmts.map.get_mut(&id).unwrap();
        let first = rewrite_execute(&execute(id, true), stmt, A, 50).unwrap();
        assert_eq!(statement_id(&first), Some(50));
        // Later executions omit the types; on A they stay omitted...
        let again = rewrite_execute(&execute(id, false), stmt, A, 50).unwrap();
        assert_eq!(again, with_id(&execute(id, false), 50));
        // ...but on B, which never saw them, they are put back.
        let moved = rewrite_execute(&execute(id, false), stmt, B, 9).unwrap();
        assert_eq!(moved, with_id(&execute(id, true), 9));
        let once_more = rewrite_execute(&execute(id, false), stmt, B, 9).unwrap();
        assert_eq!(once_more, with_id(&execute(id, false), 9));
    }

    #[test]
    fn short_payloads_are_errors_not_panics() {
        let mut stmts = Statements::default();
        let id = stmts.add("SELECT ?".into(), 1, A, 1);
        let stmt = stmts.map.get_mut(&id).unwrap();
        assert!(rewrite_execute(&[0x17, 1, 0, 0, 0], stmt, A, 1).is_err());
        let mut no_types = execute(id, false);
        no_types.truncate(12);
        assert!(rewrite_execute(&no_types, stmt, B, 2).is_err());
        assert_eq!(statement_id(&[0x17, 1]), None);
    }
}
