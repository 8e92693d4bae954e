//! Prepared statements across servers and connections. The client sees one statement id per
//! prepare; Lagless keeps the statement's text here, and each backend connection keeps what it
//! has prepared (`crate::stmt_cache`): an execution prepares the statement on its connection
//! first if that connection does not have it yet. Parameter types and long data are kept so
//! that an execution can move to another server or another pooled connection (a read on a
//! replica, then the same statement inside a transaction on the primary; a multiplexed session
//! on the next connection) without the client noticing. Prepared statements therefore do not
//! pin a session's connections; cursors do.

use std::collections::HashMap;
use std::sync::Arc;

use lagless_protocol::ProtocolError;
use lagless_routing::ServerRef;

use crate::stmt_cache::CachedStmt;

/// `CURSOR_TYPE_READ_ONLY` in COM_STMT_EXECUTE's flags.
const CURSOR_TYPE_READ_ONLY: u8 = 1;

/// One client-side prepared statement.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: Arc<str>,
    pub params: u16,
    /// The types the client last bound (2 bytes per parameter).
    pub types: Option<Vec<u8>>,
    /// COM_STMT_SEND_LONG_DATA chunks since the last execution: (parameter, bytes).
    pub long_data: Vec<(u16, Vec<u8>)>,
    /// Where the last execution ran (server, server's statement id): a cursor lives there.
    pub last: Option<(ServerRef, u32)>,
}

/// The session's prepared statements by client id.
#[derive(Debug, Default)]
pub struct Statements {
    next_id: u32,
    pub map: HashMap<u32, Prepared>,
    /// An execution asked for a cursor: it lives on that connection, which the session keeps
    /// from then on.
    pub cursor_opened: bool,
    /// The execute payload being rewritten for a server, reused from one execution to the
    /// next (see [`rewrite_execute_into`]).
    pub exec_buf: Vec<u8>,
}

impl Statements {
    /// Registers a statement; returns the client's id.
    pub fn add(&mut self, sql: Arc<str>, params: u16) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        self.map.insert(
            id,
            Prepared {
                sql,
                params,
                types: None,
                long_data: Vec::new(),
                last: None,
            },
        );
        id
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.cursor_opened = false;
    }
}

/// Does this COM_STMT_EXECUTE open a cursor?
pub fn opens_cursor(payload: &[u8]) -> bool {
    payload
        .get(5)
        .is_some_and(|f| f & CURSOR_TYPE_READ_ONLY != 0)
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

/// Where an execution of a statement with `params` parameters has its new_params_bound flag:
/// after command(1), id(4), flags(1), iterations(4) and the null bitmap.
fn params_bound_at(params: usize) -> usize {
    10 + params.div_ceil(8)
}

/// The parameter types a COM_STMT_EXECUTE carries (new_params_bound = 1), or None.
///
/// # Errors
/// A payload too short for its parameter count.
fn sent_types(payload: &[u8], params: usize) -> Result<Option<&[u8]>, ProtocolError> {
    let flag_at = params_bound_at(params);
    if *payload.get(flag_at).ok_or(ProtocolError::Truncated)? != 1 {
        return Ok(None);
    }
    payload
        .get(flag_at + 1..flag_at + 1 + 2 * params)
        .map(Some)
        .ok_or(ProtocolError::Truncated)
}

/// Records the parameter types a COM_STMT_EXECUTE carries (new_params_bound = 1), before
/// anything can fail: the client sends them once and omits them afterwards, even when that
/// execution failed (a failed optimistic transaction, a server that could not be reached), so
/// they must be known for the next execution wherever it runs. A malformed payload records
/// nothing ([`rewrite_execute_into`] reports it).
pub fn remember_types(payload: &[u8], stmt: &mut Prepared) {
    if stmt.params == 0 {
        return;
    }
    if let Ok(Some(types)) = sent_types(payload, usize::from(stmt.params)) {
        keep_types(stmt, types);
    }
}

fn keep_types(stmt: &mut Prepared, types: &[u8]) {
    if stmt.types.as_deref() != Some(types) {
        stmt.types = Some(types.to_vec());
    }
}

/// [`rewrite_execute_into`] into a new Vec (for the tests).
#[cfg(test)]
pub fn rewrite_execute(
    payload: &[u8],
    stmt: &mut Prepared,
    cached: &mut CachedStmt,
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    rewrite_execute_into(payload, stmt, cached, &mut out)?;
    Ok(out)
}

/// Rewrites a COM_STMT_EXECUTE for a connection's statement `cached`: its statement id, and
/// the parameter types when the client did not resend them (new_params_bound = 0) but the
/// types last bound on that connection's statement are not the client's (another connection,
/// or another session bound others). Records the types when the client sends them. Writes
/// into `out` (cleared first), a buffer the session reuses: no allocation per execution once
/// it is large enough.
///
/// # Errors
/// A payload too short for its parameter count.
pub fn rewrite_execute_into(
    payload: &[u8],
    stmt: &mut Prepared,
    cached: &mut CachedStmt,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    out.clear();
    out.extend_from_slice(payload);
    if out.len() >= 5 {
        out[1..5].copy_from_slice(&cached.id.to_le_bytes());
    }
    if stmt.params == 0 {
        return Ok(());
    }
    let n = usize::from(stmt.params);
    let flag_at = params_bound_at(n);
    if let Some(types) = sent_types(payload, n)? {
        keep_types(stmt, types);
        if cached.bound.as_deref() != Some(types) {
            cached.bound = Some(types.to_vec());
        }
    } else if cached.bound != stmt.types {
        let types = stmt.types.as_ref().ok_or(ProtocolError::Malformed(
            "execution without parameter types",
        ))?;
        // new_params_bound = 1, followed by the types.
        out.splice(
            flag_at..=flag_at,
            std::iter::once(1).chain(types.iter().copied()),
        );
        cached.bound = Some(types.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stmt_cache::{StmtCache, StmtKey};

    fn execute(id: u32, bound: bool, types: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x17];
        p.extend_from_slice(&id.to_le_bytes());
        p.push(0);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(0); // null bitmap for 2 params
        p.push(u8::from(bound));
        if bound {
            p.extend_from_slice(&types);
        }
        p.extend_from_slice(&7i32.to_le_bytes());
        p.extend_from_slice(&[1, b'x']);
        p
    }

    const LONG_STRING: [u8; 4] = [0x03, 0x00, 0xfe, 0x00];
    const STRING_STRING: [u8; 4] = [0xfe, 0x00, 0xfe, 0x00];

    /// Two connections' caches, each with the statement prepared as `a_id` / `b_id`.
    fn two_connections(a_id: u32, b_id: u32) -> (StmtCache, StmtCache, StmtKey) {
        let key = StmtKey {
            context: 0,
            sql: Arc::from("SELECT ?, ?"),
        };
        let (mut a, mut b) = (StmtCache::default(), StmtCache::default());
        a.insert(key.clone(), a_id);
        b.insert(key.clone(), b_id);
        (a, b, key)
    }

    #[test]
    fn types_sent_with_an_execution_that_never_ran_serve_the_next() {
        let mut stmts = Statements::default();
        let id = stmts.add("SELECT ?, ?".into(), 2);
        let stmt = stmts.map.get_mut(&id).unwrap();
        // The first execution carried the types but failed before reaching a server.
        remember_types(&execute(id, true, LONG_STRING), stmt);
        let (mut a, _, key) = two_connections(50, 9);
        let next = rewrite_execute(
            &execute(id, false, LONG_STRING),
            stmt,
            a.get_mut(&key).unwrap(),
        )
        .unwrap();
        assert_eq!(next, with_id(&execute(id, true, LONG_STRING), 50));
        // Malformed or type-less payloads change nothing.
        remember_types(&[0x17, 1], stmt);
        remember_types(&execute(id, false, STRING_STRING), stmt);
        assert_eq!(stmt.types.as_deref(), Some(&LONG_STRING[..]));
    }

    #[test]
    fn types_follow_an_execution_to_a_new_connection() {
        let mut stmts = Statements::default();
        let id = stmts.add("SELECT ?, ?".into(), 2);
        let stmt = stmts.map.get_mut(&id).unwrap();
        let (mut a, mut b, key) = two_connections(50, 9);
        let on_a = a.get_mut(&key).unwrap();
        let first = rewrite_execute(&execute(id, true, LONG_STRING), stmt, on_a).unwrap();
        assert_eq!(statement_id(&first), Some(50));
        // Later executions omit the types; on A they stay omitted...
        let again = rewrite_execute(&execute(id, false, LONG_STRING), stmt, on_a).unwrap();
        assert_eq!(again, with_id(&execute(id, false, LONG_STRING), 50));
        // ...but on B, which never saw them, they are put back.
        let on_b = b.get_mut(&key).unwrap();
        let moved = rewrite_execute(&execute(id, false, LONG_STRING), stmt, on_b).unwrap();
        assert_eq!(moved, with_id(&execute(id, true, LONG_STRING), 9));
        let once_more = rewrite_execute(&execute(id, false, LONG_STRING), stmt, on_b).unwrap();
        assert_eq!(once_more, with_id(&execute(id, false, LONG_STRING), 9));
    }

    #[test]
    fn another_sessions_types_on_a_shared_statement_are_replaced() {
        let (mut a, _, key) = two_connections(50, 9);
        let mut first = Statements::default();
        let id1 = first.add("SELECT ?, ?".into(), 2);
        let mut second = Statements::default();
        let id2 = second.add("SELECT ?, ?".into(), 2);
        let s1 = first.map.get_mut(&id1).unwrap();
        let s2 = second.map.get_mut(&id2).unwrap();
        rewrite_execute(
            &execute(id1, true, LONG_STRING),
            s1,
            a.get_mut(&key).unwrap(),
        )
        .unwrap();
        // The second session binds other types on the same server statement...
        rewrite_execute(
            &execute(id2, true, STRING_STRING),
            s2,
            a.get_mut(&key).unwrap(),
        )
        .unwrap();
        // ...so the first session's next execution without types gets its own back.
        let out = rewrite_execute(
            &execute(id1, false, LONG_STRING),
            s1,
            a.get_mut(&key).unwrap(),
        )
        .unwrap();
        assert_eq!(out, with_id(&execute(id1, true, LONG_STRING), 50));
    }

    #[test]
    fn cursor_flag_and_short_payloads() {
        let mut p = execute(1, false, LONG_STRING);
        assert!(!opens_cursor(&p));
        p[5] = CURSOR_TYPE_READ_ONLY;
        assert!(opens_cursor(&p));
        assert!(!opens_cursor(&[0x17, 1]));

        let mut stmts = Statements::default();
        let id = stmts.add("SELECT ?".into(), 1);
        let stmt = stmts.map.get_mut(&id).unwrap();
        let (mut a, _, key) = two_connections(1, 2);
        let cached = a.get_mut(&key).unwrap();
        assert!(rewrite_execute(&[0x17, 1, 0, 0, 0], stmt, cached).is_err());
        let mut no_flag = execute(id, false, LONG_STRING);
        no_flag.truncate(11);
        assert!(rewrite_execute(&no_flag, stmt, cached).is_err());
        // Without types from anyone, the execution goes as is (the server answers it).
        let no_types = [0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, b'x'];
        assert!(rewrite_execute(&no_types, stmt, cached).is_ok());
        // Types bound on the connection by another session, none by this one: an error, not
        // a guess.
        cached.bound = Some(vec![0x03, 0x00]);
        assert!(rewrite_execute(&no_types, stmt, cached).is_err());
        assert_eq!(statement_id(&[0x17, 1]), None);
    }
}
