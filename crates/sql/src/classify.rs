//! Statement classification: `classify()` for a whole text, `statements()` per statement.

use crate::class::{MetaKind, SessionKind, StatementClass, TransactionKind, XaKind};
use crate::cursor::{
    Cursor, DML, GET_LOCK, INTO, LOCKING, PRIMARY_FN, RELEASE_ALL_LOCKS, SQL_MODE, UNTERMINATED,
    USER_VAR, UV_ASSIGN,
};
use crate::hints::{self, RoutingHint};
use crate::keywords::Kw;
use crate::lexer::{LexOptions, Lexer, Token, TokenKind};
use crate::set;
use crate::tables::Tables;

/// The result of classifying a query text (or, from [`statements`], one statement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification<'a> {
    /// The class; for multi-statement text the most restrictive part's class
    /// (see [`StatementClass`] for the order; the last one wins a tie).
    pub class: StatementClass<'a>,
    /// Routing hint from the first comment of the text (see [`crate::hints`]).
    pub hint: Option<RoutingHint<'a>>,
    /// The first keyword of the first statement, as written (`select`, `INSERT`, ...).
    pub first_keyword: Option<&'a str>,
    /// Number of non-empty statements (`SELECT 1;` is one; `;;` is none).
    pub statement_count: u32,
    /// More than one statement: routers that track session state should walk
    /// [`statements`] since `class` keeps only the most restrictive part.
    pub multi: bool,
    /// Some statement reads or writes a user variable (`@a`). User variables live on
    /// the connection that set them: reading one on another backend gives NULL or a stale value.
    pub uses_user_variables: bool,
    /// Some statement assigns a user variable (`SET @a = ...`, `@a := ...`, `SELECT ... INTO @a`
    /// is reported through the class and `INTO`, not here).
    pub assigns_user_variables: bool,
    /// Some statement calls a primary-only function or reads primary-only state
    /// (`GET_LOCK()`, `LAST_INSERT_ID()`, `NEXTVAL()`, `FOUND_ROWS()`, `@@identity`, ...),
    /// whatever its class (e.g. `SET @id = LAST_INSERT_ID()`).
    pub primary_only_functions: bool,
    /// Some statement calls `GET_LOCK()`: the session now may hold a named lock, which
    /// lives on the connection that took it.
    pub takes_named_lock: bool,
    /// Some statement calls `RELEASE_ALL_LOCKS()`.
    pub releases_all_named_locks: bool,
    /// `SET autocommit = ...` seen (any spelling, also inside a SET of several variables);
    /// the last value wins.
    pub autocommit: Option<bool>,
    /// `SET sql_mode = ...` seen: `ANSI_QUOTES`/`NO_BACKSLASH_ESCAPES` may have changed,
    /// the caller should refresh its [`LexOptions`].
    pub sets_sql_mode: bool,
    /// The classified text (the whole input, or the statement for [`statements`]).
    pub text: &'a str,
    opts: LexOptions,
}

impl<'a> Classification<'a> {
    fn new(text: &'a str, opts: LexOptions) -> Self {
        Classification {
            class: StatementClass::Empty,
            hint: None,
            first_keyword: None,
            statement_count: 0,
            multi: false,
            uses_user_variables: false,
            assigns_user_variables: false,
            primary_only_functions: false,
            takes_named_lock: false,
            releases_all_named_locks: false,
            autocommit: None,
            sets_sql_mode: false,
            text,
            opts,
        }
    }

    /// Tables named by the text, lazily extracted (see [`mod@crate::tables`]).
    pub fn tables(&self) -> Tables<'a> {
        Tables::new(self.text, self.opts)
    }

    fn absorb(&mut self, s: &Stmt<'a>) {
        if self.statement_count == 0 {
            self.first_keyword = s.first_keyword;
        }
        self.statement_count += 1;
        self.multi = self.statement_count > 1;
        if s.class.rank() >= self.class.rank() {
            self.class = s.class;
        }
        self.uses_user_variables |= s.facts & (USER_VAR | UV_ASSIGN) != 0;
        self.assigns_user_variables |= s.facts & UV_ASSIGN != 0;
        self.primary_only_functions |= s.facts & PRIMARY_FN != 0;
        self.takes_named_lock |= s.facts & GET_LOCK != 0;
        self.releases_all_named_locks |= s.facts & RELEASE_ALL_LOCKS != 0;
        self.sets_sql_mode |= s.facts & SQL_MODE != 0;
        if s.autocommit.is_some() {
            self.autocommit = s.autocommit;
        }
    }
}

/// Classify a query text (one or several `;`-separated statements).
///
/// Never allocates, never panics, runs in time linear in `sql.len()`.
pub fn classify<'a>(sql: &'a str, opts: &LexOptions) -> Classification<'a> {
    let mut cur = Cursor::new(Lexer::new(sql, *opts));
    let mut out = Classification::new(sql, *opts);
    while let Some(s) = next_statement(&mut cur) {
        out.absorb(&s);
    }
    out.hint = hints::from_comment(cur.lx.first_comment());
    out
}

/// Iterate over the statements of a text, classifying each one.
///
/// Each item has `statement_count == 1`, `text` set to that statement (from its first
/// token to the end of its last token) and `hint` set only on the statement during
/// which the text's first comment was seen.
pub fn statements<'a>(sql: &'a str, opts: &LexOptions) -> Statements<'a> {
    Statements {
        cur: Cursor::new(Lexer::new(sql, *opts)),
        src: sql,
        opts: *opts,
        hint_given: false,
    }
}

/// Iterator returned by [`statements`].
pub struct Statements<'a> {
    cur: Cursor<'a>,
    src: &'a str,
    opts: LexOptions,
    hint_given: bool,
}

impl<'a> Iterator for Statements<'a> {
    type Item = Classification<'a>;

    fn next(&mut self) -> Option<Classification<'a>> {
        let s = next_statement(&mut self.cur)?;
        let text = self.src.get(s.start..s.end).unwrap_or("");
        let mut c = Classification::new(text, self.opts);
        c.absorb(&s);
        if !self.hint_given {
            if let Some(comment) = self.cur.lx.first_comment() {
                self.hint_given = true;
                c.hint = hints::parse_hint(comment.body);
            }
        }
        Some(c)
    }
}

pub(crate) struct Stmt<'a> {
    class: StatementClass<'a>,
    facts: u16,
    autocommit: Option<bool>,
    first_keyword: Option<&'a str>,
    start: usize,
    end: usize,
}

fn next_statement<'a>(cur: &mut Cursor<'a>) -> Option<Stmt<'a>> {
    if cur.eof {
        return None;
    }
    let first = loop {
        cur.begin_statement();
        match cur.next() {
            Some(t) => break t,
            None if cur.eof => return None,
            None => continue, // empty statement
        }
    };
    let start = first.start;
    let mut class = statement(cur, first, 0);
    cur.drain();
    if cur.facts & UNTERMINATED != 0 {
        class = StatementClass::Unknown;
    }
    Some(Stmt {
        class,
        facts: cur.facts,
        autocommit: cur.autocommit,
        first_keyword: cur.first_kw,
        start,
        end: cur.end.max(start),
    })
}

const MAX_DEPTH: u8 = 8;

/// Classify the statement whose first token, `first`, was just consumed from `cur`.
/// May leave the rest of the statement unconsumed (the caller drains it).
pub(crate) fn statement<'a>(
    cur: &mut Cursor<'a>,
    first: Token<'a>,
    depth: u8,
) -> StatementClass<'a> {
    use StatementClass as C;
    if depth > MAX_DEPTH {
        return C::Unknown;
    }
    if first.kind != TokenKind::Word {
        if first.is_symbol(b'(') {
            // (SELECT ...) UNION (SELECT ...)
            let mut t = first;
            while t.is_symbol(b'(') {
                match cur.next() {
                    Some(n) => t = n,
                    None => return C::Unknown,
                }
            }
            return match cur.prev_kw {
                Kw::Select | Kw::With | Kw::Values | Kw::Table => statement(cur, t, depth + 1),
                _ => C::Unknown,
            };
        }
        return C::Unknown;
    }
    if cur.first_kw.is_none() {
        cur.first_kw = Some(first.text);
    }
    // `first` is the last consumed token, so its keyword is `prev_kw`.
    match cur.prev_kw {
        Kw::Select | Kw::Table | Kw::Values => select_like(cur),
        Kw::With => with_statement(cur),
        Kw::Insert
        | Kw::Replace
        | Kw::Update
        | Kw::Delete
        | Kw::Load
        | Kw::Alter
        | Kw::Truncate
        | Kw::Rename
        | Kw::Grant
        | Kw::Revoke
        | Kw::Optimize
        | Kw::Repair
        | Kw::Check
        | Kw::Checksum
        | Kw::Flush
        | Kw::Reset
        | Kw::Purge
        | Kw::Install
        | Kw::Uninstall
        | Kw::Kill
        | Kw::Change
        | Kw::Stop
        | Kw::Cache
        | Kw::Import
        | Kw::Shutdown
        | Kw::Restart
        | Kw::Clone
        | Kw::Binlog
        | Kw::Backup => C::Write,
        Kw::Set => set::set_statement(cur, depth),
        Kw::Create => {
            let mut k = cur.peek_kw();
            if k == Kw::Or {
                cur.next(); // OR
                cur.next(); // REPLACE
                k = cur.peek_kw();
            }
            if k == Kw::Temporary {
                C::SessionState(SessionKind::CreateTemporaryTable)
            } else {
                C::Write
            }
        }
        Kw::Drop => match cur.peek_kw() {
            Kw::Temporary => C::SessionState(SessionKind::DropTemporaryTable),
            Kw::Prepare => {
                cur.next();
                name_then(cur, SessionKind::Deallocate)
            }
            _ => C::Write,
        },
        Kw::Deallocate => {
            if cur.peek_kw() == Kw::Prepare {
                cur.next();
            }
            name_then(cur, SessionKind::Deallocate)
        }
        Kw::Prepare => name_then(cur, SessionKind::Prepare),
        Kw::Execute => {
            if cur.peek_kw() == Kw::Immediate {
                C::Call
            } else {
                name_then(cur, SessionKind::Execute)
            }
        }
        Kw::Use => name_then(cur, SessionKind::Use),
        Kw::Lock => match cur.peek_kw() {
            Kw::Table | Kw::Tables => C::SessionState(SessionKind::LockTables),
            _ => C::Write, // LOCK INSTANCE FOR BACKUP
        },
        Kw::Unlock => match cur.peek_kw() {
            Kw::Table | Kw::Tables => C::SessionState(SessionKind::UnlockTables),
            _ => C::Write, // UNLOCK INSTANCE
        },
        Kw::Handler => C::SessionState(SessionKind::Handler),
        Kw::Call => C::Call,
        Kw::Begin => match cur.next_kw() {
            None => begin(false, false),
            Some((_, Kw::Work)) => match cur.next() {
                None => begin(false, false),
                Some(_) => C::Unknown,
            },
            Some((_, Kw::Not)) => C::Call, // BEGIN NOT ATOMIC ... END
            Some(_) => C::Unknown,
        },
        Kw::Start => match cur.next_kw() {
            Some((_, Kw::Transaction)) => set::start_transaction(cur),
            Some(_) => C::Write, // START SLAVE / REPLICA / GROUP_REPLICATION
            None => C::Unknown,
        },
        Kw::Commit => {
            let (chain, release, to) = set::chain_release(cur);
            if to {
                C::Unknown
            } else {
                C::Transaction(TransactionKind::Commit { chain, release })
            }
        }
        Kw::Rollback => {
            let (chain, release, to) = set::chain_release(cur);
            if to {
                C::Transaction(TransactionKind::RollbackToSavepoint)
            } else {
                C::Transaction(TransactionKind::Rollback { chain, release })
            }
        }
        Kw::Savepoint => match cur.next() {
            Some(_) => C::Transaction(TransactionKind::Savepoint),
            None => C::Unknown,
        },
        Kw::Release => match cur.next_kw() {
            Some((_, Kw::Savepoint)) => C::Transaction(TransactionKind::ReleaseSavepoint),
            _ => C::Unknown,
        },
        Kw::Xa => match cur.next_kw() {
            Some((_, k)) => match k {
                Kw::Start | Kw::Begin => C::Transaction(TransactionKind::Xa(XaKind::Start)),
                Kw::End => C::Transaction(TransactionKind::Xa(XaKind::End)),
                Kw::Prepare => C::Transaction(TransactionKind::Xa(XaKind::Prepare)),
                Kw::Commit => C::Transaction(TransactionKind::Xa(XaKind::Commit)),
                Kw::Rollback => C::Transaction(TransactionKind::Xa(XaKind::Rollback)),
                Kw::Recover => C::Transaction(TransactionKind::Xa(XaKind::Recover)),
                _ => C::Unknown,
            },
            None => C::Unknown,
        },
        Kw::Show => match cur.peek_kw() {
            Kw::Warnings | Kw::Errors | Kw::Count => C::Meta(MetaKind::ShowDiagnostics),
            _ => C::Meta(MetaKind::Show),
        },
        Kw::Get => match cur.peek_kw() {
            Kw::Diagnostics | Kw::Current | Kw::Stacked => C::Meta(MetaKind::ShowDiagnostics),
            _ => C::Unknown,
        },
        Kw::Describe | Kw::Desc | Kw::Explain => explain(cur, depth),
        Kw::Analyze => analyze(cur, depth),
        Kw::Help => C::Meta(MetaKind::Help),
        Kw::Do => {
            cur.drain();
            if cur.facts & (PRIMARY_FN | UV_ASSIGN | INTO) != 0 {
                C::ReadPrimaryOnly
            } else {
                C::Meta(MetaKind::Do)
            }
        }
        _ => C::Unknown,
    }
}

fn begin<'a>(read_only: bool, consistent_snapshot: bool) -> StatementClass<'a> {
    StatementClass::Transaction(TransactionKind::Begin {
        read_only,
        consistent_snapshot,
    })
}

/// `KEYWORD name`: the next token must name something.
fn name_then<'a>(cur: &mut Cursor<'a>, f: fn(&'a str) -> SessionKind<'a>) -> StatementClass<'a> {
    match cur.next() {
        Some(t) if t.is_ident_like() => StatementClass::SessionState(f(t.text)),
        _ => StatementClass::Unknown,
    }
}

/// Class of a SELECT-like statement from the facts of the whole statement.
pub(crate) fn select_like<'a>(cur: &mut Cursor<'a>) -> StatementClass<'a> {
    cur.drain();
    select_class(cur.facts)
}

#[inline]
fn select_class<'a>(facts: u16) -> StatementClass<'a> {
    if facts & DML != 0 {
        StatementClass::Write
    } else if facts & LOCKING != 0 {
        StatementClass::LockingRead
    } else if facts & (INTO | PRIMARY_FN | UV_ASSIGN) != 0 {
        StatementClass::ReadPrimaryOnly
    } else {
        StatementClass::Read
    }
}

/// `WITH [RECURSIVE] cte AS (...) [, ...] <main statement>`: the main statement is the
/// first SELECT/TABLE/VALUES/INSERT/UPDATE/DELETE/REPLACE at depth 0 (or a parenthesised
/// query). Any DML in a CTE body also makes it a write.
fn with_statement<'a>(cur: &mut Cursor<'a>) -> StatementClass<'a> {
    cur.body_mode = true;
    loop {
        let after_rparen = cur.prev_is_symbol(b')');
        let Some(t) = cur.next() else {
            return StatementClass::Unknown;
        };
        if cur.depth == 0 && t.kind == TokenKind::Word {
            match cur.prev_kw {
                Kw::Select | Kw::Table | Kw::Values => return select_like(cur),
                Kw::Insert | Kw::Update | Kw::Delete | Kw::Replace => return StatementClass::Write,
                _ => {}
            }
        }
        if after_rparen && cur.depth == 1 && t.is_symbol(b'(') {
            return select_like(cur);
        }
    }
}

/// `EXPLAIN|DESCRIBE|DESC ...`
fn explain<'a>(cur: &mut Cursor<'a>, depth: u8) -> StatementClass<'a> {
    use StatementClass as C;
    loop {
        let Some((t, k)) = cur.next_kw() else {
            return C::Unknown;
        };
        match k {
            Kw::Analyze => return analyze(cur, depth),
            Kw::Extended | Kw::Partitions => continue,
            Kw::Format => {
                skip_format_value(cur);
                continue;
            }
            Kw::For => return C::Meta(MetaKind::Explain), // EXPLAIN FOR CONNECTION n
            Kw::Select
            | Kw::Insert
            | Kw::Update
            | Kw::Delete
            | Kw::Replace
            | Kw::Table
            | Kw::With
            | Kw::Values => return C::Meta(MetaKind::Explain),
            _ if t.is_symbol(b'(') => return C::Meta(MetaKind::Explain),
            _ if t.is_ident_like() => return C::Meta(MetaKind::Describe),
            _ => return C::Unknown,
        }
    }
}

/// `= value` after FORMAT.
fn skip_format_value(cur: &mut Cursor<'_>) {
    if cur.peek().is_some_and(|t| t.is_symbol(b'=')) {
        cur.next();
    }
    cur.next();
}

/// `ANALYZE ...`: `ANALYZE [NO_WRITE_TO_BINLOG | LOCAL] TABLE` is a write; MariaDB's
/// `ANALYZE [FORMAT=JSON] <statement>` (and MySQL's `EXPLAIN ANALYZE`) executes the
/// statement, so it is classified as that statement.
fn analyze<'a>(cur: &mut Cursor<'a>, depth: u8) -> StatementClass<'a> {
    loop {
        let Some((t, k)) = cur.next_kw() else {
            return StatementClass::Unknown;
        };
        match k {
            Kw::Format => skip_format_value(cur),
            Kw::Table | Kw::Tables | Kw::NoWriteToBinlog | Kw::Local => {
                return StatementClass::Write
            }
            _ => return statement(cur, t, depth + 1),
        }
    }
}

#[cfg(test)]
mod tests;
