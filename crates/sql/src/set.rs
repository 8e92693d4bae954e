//! `SET ...`, `START TRANSACTION ...` and `COMMIT/ROLLBACK ...` details.

use crate::class::{SessionKind, StatementClass, TransactionKind, TxScope};
use crate::classify::statement;
use crate::cursor::{sysvar_name, Cursor, SQL_MODE, UV_ASSIGN};
use crate::keywords::Kw;
use crate::lexer::{Token, TokenKind};

/// What one SET item assigns.
enum Target<'a> {
    User,
    Global,
    Session(&'a str),
    /// `NAMES ...`, `CHARACTER SET ...`, `CHARSET ...`
    Charset,
}

/// Classify `SET ...` (the SET keyword already consumed).
pub(crate) fn set_statement<'a>(cur: &mut Cursor<'a>, depth: u8) -> StatementClass<'a> {
    use StatementClass as C;
    let Some((first, k)) = cur.next_kw() else {
        return C::Unknown;
    };
    match k {
        // MariaDB: SET STATEMENT var=value [, ...] FOR <statement>
        Kw::Statement => loop {
            let Some((_, k)) = cur.next_kw() else {
                return C::Unknown;
            };
            if k == Kw::For && cur.depth == 0 {
                return match cur.next() {
                    Some(inner) => statement(cur, inner, depth + 1),
                    None => C::Unknown,
                };
            }
        },
        Kw::Transaction => return set_transaction(cur, TxScope::Next),
        Kw::Global if cur.peek_kw() == Kw::Transaction => {
            cur.next();
            return set_transaction(cur, TxScope::Global);
        }
        // SET GLOBAL|PERSIST var = ...: server configuration, not session state
        Kw::Global | Kw::Persist | Kw::PersistOnly => return C::Write,
        Kw::Session | Kw::Local if cur.peek_kw() == Kw::Transaction => {
            cur.next();
            return set_transaction(cur, TxScope::Session);
        }
        // SET PASSWORD [FOR user] = ..., SET DEFAULT ROLE ... TO ...
        Kw::Password | Kw::Default => return C::Write,
        // SET ROLE ..., SET RESOURCE GROUP ...: session-level
        Kw::Role | Kw::Resource => return C::SessionState(SessionKind::SetVariables),
        _ => {}
    }
    assignments(cur, first, k)
}

fn assignments<'a>(cur: &mut Cursor<'a>, first: Token<'a>, first_kw: Kw) -> StatementClass<'a> {
    use StatementClass as C;
    let mut item = (first, first_kw);
    let mut items = 0u32;
    let mut all_user = true;
    let mut all_tx = true;
    let mut global = false;
    let mut autocommit: Option<Option<bool>> = None;
    let mut tx_read_only: Option<bool> = None;
    loop {
        items += 1;
        let (t, k) = item;
        let target = match t.kind {
            TokenKind::UserVar => Target::User,
            TokenKind::SysVar => match sysvar_name(t.text) {
                (Some(Kw::Global | Kw::Persist | Kw::PersistOnly), _) => Target::Global,
                (_, name) => Target::Session(name),
            },
            TokenKind::QuotedIdent => Target::Session(t.text),
            TokenKind::Word => match k {
                Kw::Global | Kw::Persist | Kw::PersistOnly => Target::Global,
                Kw::Session | Kw::Local => match cur.next() {
                    Some(n) if n.is_ident_like() => Target::Session(n.text),
                    _ => return C::Unknown,
                },
                Kw::Names | Kw::Charset => Target::Charset,
                Kw::Character => match cur.next_kw() {
                    Some((_, Kw::Set)) => Target::Charset,
                    _ => return C::Unknown,
                },
                _ => Target::Session(t.text),
            },
            _ => return C::Unknown,
        };
        if !matches!(target, Target::Charset) {
            match cur.next() {
                Some(op) if op.is_symbol(b'=') || op.kind == TokenKind::Assign => {}
                _ => return C::Unknown,
            }
        }
        let (value, n, more) = value(cur);
        match target {
            Target::User => {
                cur.facts |= UV_ASSIGN;
                all_tx = false;
            }
            Target::Global => {
                global = true;
            }
            Target::Charset => {
                all_user = false;
                all_tx = false;
            }
            Target::Session(name) => {
                all_user = false;
                if name.eq_ignore_ascii_case("autocommit") {
                    all_tx = false;
                    autocommit = Some(boolean(value, n));
                } else if name.eq_ignore_ascii_case("transaction_read_only")
                    || name.eq_ignore_ascii_case("tx_read_only")
                {
                    tx_read_only = boolean(value, n);
                } else if name.eq_ignore_ascii_case("transaction_isolation")
                    || name.eq_ignore_ascii_case("tx_isolation")
                {
                } else {
                    all_tx = false;
                    if name.eq_ignore_ascii_case("sql_mode") {
                        cur.facts |= SQL_MODE;
                    }
                }
            }
        }
        if !more {
            break;
        }
        match cur.next() {
            Some(t) => item = (t, cur.prev_kw),
            None => return C::Unknown,
        }
    }
    if global {
        return C::Write;
    }
    if all_user {
        return C::SessionState(SessionKind::SetUserVariable);
    }
    if let Some(v) = autocommit {
        let Some(v) = v else {
            // SET autocommit = <expression>: the router cannot track it
            return C::Unknown;
        };
        cur.autocommit = Some(v);
        if items == 1 {
            return C::Transaction(TransactionKind::SetAutocommit(v));
        }
    }
    if all_tx {
        return C::Transaction(TransactionKind::SetTransaction {
            scope: TxScope::Session,
            read_only: tx_read_only,
        });
    }
    C::SessionState(SessionKind::SetVariables)
}

/// Consume a value up to a ',' at depth 0 (consumed) or the end of the statement.
/// Returns its first token, its token count and whether a ',' followed.
fn value<'a>(cur: &mut Cursor<'a>) -> (Option<Token<'a>>, u32, bool) {
    let mut first = None;
    let mut n = 0;
    loop {
        let Some(t) = cur.peek() else {
            return (first, n, false);
        };
        if cur.depth == 0 && t.is_symbol(b',') {
            cur.next();
            return (first, n, true);
        }
        cur.next();
        if first.is_none() {
            first = Some(t);
        }
        n += 1;
    }
}

/// A boolean system-variable value: 0/1, ON/OFF, TRUE/FALSE, 'ON'/'OFF'.
fn boolean(t: Option<Token<'_>>, n: u32) -> Option<bool> {
    let t = t?;
    if n != 1 {
        return None;
    }
    let s = t.text;
    match t.kind {
        TokenKind::Number | TokenKind::String | TokenKind::Word => {
            if s == "1" || s.eq_ignore_ascii_case("on") || s.eq_ignore_ascii_case("true") {
                Some(true)
            } else if s == "0" || s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Transaction characteristics: `READ ONLY`, `READ WRITE`, `WITH CONSISTENT SNAPSHOT`,
/// `ISOLATION LEVEL ...`. Returns (read_only, consistent_snapshot).
fn characteristics(cur: &mut Cursor<'_>) -> (Option<bool>, bool) {
    let mut read_only = None;
    let mut snapshot = false;
    while let Some((_, k)) = cur.next_kw() {
        match k {
            Kw::Read => match cur.peek_kw() {
                Kw::Only => {
                    cur.next();
                    read_only = Some(true);
                }
                Kw::Write => {
                    cur.next();
                    read_only = Some(false);
                }
                _ => {}
            },
            Kw::Consistent => snapshot = true,
            _ => {}
        }
    }
    (read_only, snapshot)
}

fn set_transaction<'a>(cur: &mut Cursor<'a>, scope: TxScope) -> StatementClass<'a> {
    let (read_only, _) = characteristics(cur);
    StatementClass::Transaction(TransactionKind::SetTransaction { scope, read_only })
}

/// `START TRANSACTION ...` (both keywords consumed).
pub(crate) fn start_transaction<'a>(cur: &mut Cursor<'a>) -> StatementClass<'a> {
    let (read_only, consistent_snapshot) = characteristics(cur);
    StatementClass::Transaction(TransactionKind::Begin {
        read_only: read_only == Some(true),
        consistent_snapshot,
    })
}

/// The tail of COMMIT/ROLLBACK: returns (chain, release, TO seen).
pub(crate) fn chain_release(cur: &mut Cursor<'_>) -> (bool, bool, bool) {
    let (mut chain, mut release, mut to, mut no) = (false, false, false, false);
    while let Some(t) = cur.next() {
        if t.kind != TokenKind::Word {
            continue;
        }
        match cur.prev_kw {
            Kw::No => {
                no = true;
                continue;
            }
            Kw::Chain => chain = !no,
            Kw::Release => release = !no,
            Kw::To => to = true,
            _ => {}
        }
        no = false;
    }
    (chain, release, to)
}
