//! Session state the client set (system variables, schema), learned from the servers' session
//! tracking and replayed on each backend connection before its next statement there, so that a
//! statement sees the same session whatever server runs it.

use lagless_protocol::consts::{Command, SERVER_SESSION_STATE_CHANGED};
use lagless_protocol::ok_err::{session_changes, OkPacket, SessionChange};
use lagless_protocol::response::Expect;
use lagless_sql::LexOptions;

use crate::backends::BackendConn;
use crate::error::SessionError;
use crate::relay::command;

/// Variables never replayed: read-only, or owned by Lagless.
const NOT_REPLAYED: &[&str] = &[
    "last_gtid",
    "session_track_system_variables",
    "in_transaction",
];

/// The session's tracked state, with a version that each backend connection compares with its
/// own `synced_version`.
#[derive(Debug, Default, Clone)]
pub struct TrackedState {
    /// Variables the client changed, in the order first seen, with their current values.
    vars: Vec<(String, String)>,
    pub schema: Option<String>,
    pub version: u64,
    /// Lexer options that follow sql_mode (ANSI_QUOTES, NO_BACKSLASH_ESCAPES).
    pub lex: LexOptions,
    /// `last_gtid` reported by the last statement, not yet handed to routing.
    last_gtid: Option<String>,
    /// While `Some`: the variables learned since [`Self::begin_capture`].
    capture: Option<Vec<(String, String)>>,
}

impl TrackedState {
    pub fn new(schema: Option<String>) -> Self {
        TrackedState {
            schema,
            ..Default::default()
        }
    }

    /// Learns from an OK packet of a connection that was in sync before its statement (Lagless
    /// syncs every connection before using it); call [`Self::mark_synced`] on it afterwards.
    pub fn learn(&mut self, ok_payload: &[u8], capabilities: u64) {
        if !status_changed(ok_payload) {
            return;
        }
        let Ok(ok) = OkPacket::parse(ok_payload, capabilities) else {
            return;
        };
        let mut changed = false;
        for change in session_changes(&ok.session_state).flatten() {
            match change {
                SessionChange::SystemVariable { name, value } => {
                    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                    let value = String::from_utf8_lossy(value).into_owned();
                    if name == "last_gtid" {
                        if !value.is_empty() {
                            self.last_gtid = Some(value);
                        }
                        continue;
                    }
                    if NOT_REPLAYED.contains(&name.as_str()) {
                        continue;
                    }
                    if let Some(c) = &mut self.capture {
                        c.push((name.clone(), value.clone()));
                    }
                    changed |= self.set_var(name, value);
                }
                SessionChange::Schema(db) => {
                    let db = String::from_utf8_lossy(db).into_owned();
                    if self.schema.as_deref() != Some(&db) {
                        self.schema = Some(db);
                        changed = true;
                    }
                }
                _ => {}
            }
        }
        if changed {
            self.version += 1;
        }
    }

    /// Records a variable the client set; true when its value changed.
    fn set_var(&mut self, name: String, value: String) -> bool {
        if name == "sql_mode" {
            let upper = value.to_ascii_uppercase();
            self.lex.ansi_quotes = upper.contains("ANSI_QUOTES");
            self.lex.no_backslash_escapes = upper.contains("NO_BACKSLASH_ESCAPES");
        }
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) if *v == value => return false,
            Some((_, v)) => *v = value,
            None => self.vars.push((name, value)),
        }
        true
    }

    /// Variables a statement would have set, applied without running it (see `set_names`).
    pub fn apply(&mut self, vars: &[(String, String)]) {
        let mut changed = false;
        for (name, value) in vars {
            changed |= self.set_var(name.clone(), value.clone());
        }
        if changed {
            self.version += 1;
        }
    }

    /// `SET NAMES` ran: its collation (`None`: the character set's default, which replaying
    /// `character_set_connection` gives).
    pub fn set_collation_connection(&mut self, collation: Option<String>) {
        const NAME: &str = "collation_connection";
        match collation {
            Some(co) => self.apply(&[(NAME.to_string(), co)]),
            None => {
                let before = self.vars.len();
                self.vars.retain(|(n, _)| n != NAME);
                if self.vars.len() != before {
                    self.version += 1;
                }
            }
        }
    }

    /// From now on, remember the variables learned (for [`Self::take_capture`]).
    pub fn begin_capture(&mut self) {
        self.capture = Some(Vec::new());
    }

    /// The variables learned since [`Self::begin_capture`]; capturing stops.
    pub fn take_capture(&mut self) -> Option<Vec<(String, String)>> {
        self.capture.take()
    }

    /// The GTID of the last write learned and not yet taken.
    pub fn pending_gtid(&self) -> Option<&str> {
        self.last_gtid.as_deref()
    }

    /// The GTID of the last write learned since the previous call (from `last_gtid`).
    pub fn take_last_gtid(&mut self) -> Option<String> {
        self.last_gtid.take()
    }

    /// `conn` ran a statement after being synced: it has the current state.
    pub fn mark_synced(&self, conn: &mut BackendConn) {
        if conn.synced_version != self.version {
            // The statement changed the session (rare): the connection now has what it set.
            conn.vars = self.wanted().cloned().collect();
            conn.synced_version = self.version;
        }
        conn.schema.clone_from(&self.schema);
    }

    /// The variables a connection of this session should have set. autocommit too on a
    /// replica: routing sends a session with autocommit off there only inside a transaction
    /// (READ ONLY, optimistic), whose status flags then tell the client its own setting.
    fn wanted(&self) -> impl Iterator<Item = &(String, String)> {
        self.vars.iter()
    }

    /// Brings `conn` up to date before it runs a client statement.
    ///
    /// # Errors
    /// The connection broke, or the server refused the session's schema (a replica that has
    /// not applied its CREATE DATABASE yet): a statement must not run in another schema. A
    /// server refusing a replayed variable is logged, not fatal.
    pub async fn sync(&self, conn: &mut BackendConn) -> Result<(), SessionError> {
        if conn.synced_version == self.version {
            return Ok(());
        }
        let handshake = conn.handshake_vars.as_deref().map_or(&[][..], |v| &v[..]);
        if let Some(set) = self.replay_statement(&conn.vars, handshake) {
            let reply = command(conn, set.as_bytes(), Expect::Query).await?;
            if let Some(err) = reply.error {
                tracing::warn!(server = %conn.server_name, code = err.code, "session replay refused: {}", err.message);
            }
            conn.vars = self.wanted().cloned().collect();
        }
        if let Some(db) = self.schema.as_deref() {
            // Checked here as well: no future to build on the usual path (same schema).
            if conn.schema.as_deref() != Some(db) {
                use_schema(conn, db).await?;
            }
        }
        conn.synced_version = self.version;
        Ok(())
    }

    /// `SET SESSION a = 1, b = 'x', c = DEFAULT` (as a COM_QUERY payload): what turns a
    /// connection that has `has` into one with this session's variables (a connection from the
    /// pool may carry another session's). Character-set variables go back to the values the
    /// handshake gave them (`handshake`), which DEFAULT would not do.
    fn replay_statement(
        &self,
        has: &[(String, String)],
        handshake: &[(String, String)],
    ) -> Option<String> {
        // A connection's value of a variable, when known: set by a session, else the handshake's.
        let current = |name: &str| {
            has.iter()
                .chain(handshake)
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        // Empty (no allocation) until there is something to set: this runs for every statement
        // on a connection just taken from the pool.
        let mut sql = String::new();
        let mut any = false;
        let mut item = |sql: &mut String, name: &str| {
            if any {
                sql.push_str(", ");
            } else {
                sql.push_str("\x03SET SESSION ");
            }
            any = true;
            sql.push_str(name);
            sql.push_str(" = ");
        };
        // Two passes: everything but collations, then collations. Setting character_set_X
        // resets collation_X to the character set's default, so a collation set before its
        // character set would be lost (`SET NAMES cs COLLATE co` replayed in the order the
        // server tracked it). A collation the session does not want goes back with its
        // character set when the session wants that one (its default collation then), else
        // to the handshake's value.
        let collation = |name: &str| name.starts_with("collation_");
        for last in [false, true] {
            for (name, value) in self.wanted() {
                if collation(name) == last && current(name) != Some(value.as_str()) {
                    item(&mut sql, name);
                    push_value(&mut sql, value);
                }
            }
            for (name, value) in has {
                if collation(name) != last || self.wanted().any(|(n, _)| n == name) {
                    continue;
                }
                let charset = name
                    .strip_prefix("collation_")
                    .map(|x| format!("character_set_{x}"));
                if let Some((cs, v)) = charset
                    .as_deref()
                    .and_then(|cs| self.wanted().find(|(n, _)| n == cs))
                {
                    item(&mut sql, cs);
                    push_value(&mut sql, v);
                    continue;
                }
                match handshake.iter().find(|(n, _)| n == name) {
                    Some((_, original)) if original == value => {}
                    Some((_, original)) => {
                        item(&mut sql, name);
                        push_value(&mut sql, original);
                    }
                    None => {
                        item(&mut sql, name);
                        sql.push_str("DEFAULT");
                    }
                }
            }
        }
        any.then_some(sql)
    }
}

fn status_changed(ok: &[u8]) -> bool {
    // Only OK packets whose status says "state changed" carry anything to learn; checking the
    // flag first keeps the common OK free of parsing.
    let mut r = lagless_protocol::lenenc::Reader::new(ok);
    let status = r
        .u8()
        .and_then(|_| r.lenenc_int())
        .and_then(|_| r.lenenc_int())
        .and_then(|_| r.u16());
    status.is_ok_and(|s| s & SERVER_SESSION_STATE_CHANGED != 0)
}

/// Numbers go as they are (numeric variables refuse strings); everything else quoted.
fn push_value(sql: &mut String, value: &str) {
    let numeric = value
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && value.parse::<f64>().is_ok();
    if numeric {
        sql.push_str(value);
        return;
    }
    sql.push_str(&lagless_sql::quote_literal(value));
}

/// Puts `conn` in schema `db` (COM_INIT_DB) unless it is there already.
///
/// # Errors
/// The connection broke, or the server refused the schema (unknown database, no privilege):
/// then `conn` stays where it was.
pub(crate) async fn use_schema(conn: &mut BackendConn, db: &str) -> Result<(), SessionError> {
    if conn.schema.as_deref() == Some(db) {
        return Ok(());
    }
    let mut payload = vec![Command::InitDb as u8];
    payload.extend_from_slice(db.as_bytes());
    let reply = command(conn, &payload, Expect::Single).await?;
    if let Some(err) = reply.error {
        return Err(SessionError::refused(&conn.server_name, err));
    }
    conn.schema = Some(db.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_unless_numeric() {
        let mut s = String::new();
        push_value(&mut s, "100");
        push_value(&mut s, " ");
        push_value(&mut s, "STRICT_TRANS_TABLES,ANSI_QUOTES");
        push_value(&mut s, "it's\\");
        push_value(&mut s, "-1.5");
        push_value(&mut s, "2024-01-01");
        assert_eq!(
            s,
            "100' ''STRICT_TRANS_TABLES,ANSI_QUOTES''it''s\\\\'-1.5'2024-01-01'"
        );
    }

    #[test]
    fn replay_sets_autocommit_too() {
        let mut t = TrackedState::default();
        t.vars.push(("autocommit".into(), "OFF".into()));
        t.vars.push(("time_zone".into(), "+02:00".into()));
        assert_eq!(
            t.replay_statement(&[], &[]).unwrap(),
            "\x03SET SESSION autocommit = 'OFF', time_zone = '+02:00'"
        );
    }

    #[test]
    fn replay_sets_only_the_difference_with_what_the_connection_has() {
        let mut t = TrackedState::default();
        t.vars.push(("time_zone".into(), "+02:00".into()));
        t.vars.push(("sql_mode".into(), "ANSI".into()));
        let has = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            t.replay_statement(&has(&[("time_zone", "+02:00"), ("sql_mode", "ANSI")]), &[]),
            None
        );
        assert_eq!(
            t.replay_statement(
                &has(&[("sql_mode", "TRADITIONAL"), ("wait_timeout", "5")]),
                &[]
            )
            .unwrap(),
            "\x03SET SESSION time_zone = '+02:00', sql_mode = 'ANSI', wait_timeout = DEFAULT"
        );
        // A pooled connection's autocommit is put back.
        assert_eq!(
            TrackedState::default()
                .replay_statement(&has(&[("autocommit", "OFF")]), &[])
                .unwrap(),
            "\x03SET SESSION autocommit = DEFAULT"
        );
    }

    #[test]
    fn character_set_variables_go_back_to_the_handshake_values() {
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        let hs = vec![
            pair("character_set_client", "utf8mb4"),
            pair("collation_connection", "utf8mb4_general_ci"),
        ];
        let mut t = TrackedState::default();
        // Wanted values equal to the handshake's need no statement on a fresh connection...
        t.vars.push(pair("character_set_client", "utf8mb4"));
        assert_eq!(t.replay_statement(&[], &hs), None);
        // ...and a connection another session left in latin1 is put back.
        let has = [
            pair("character_set_client", "latin1"),
            pair("collation_connection", "latin1_swedish_ci"),
        ];
        assert_eq!(
            t.replay_statement(&has, &hs).unwrap(),
            "\x03SET SESSION character_set_client = 'utf8mb4', \
             collation_connection = 'utf8mb4_general_ci'"
        );
        // Left at the handshake's value by another session: nothing to do.
        let t = TrackedState::default();
        let has = [pair("character_set_client", "utf8mb4")];
        assert_eq!(t.replay_statement(&has, &hs), None);
    }
}
