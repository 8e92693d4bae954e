//! A one-statement token cursor over the lexer that records routing facts as
//! tokens go by (so every statement is scanned exactly once).

use crate::keywords::{body_kw_at, kw, kw_at, Kw};
use crate::lexer::{Lexer, Token, TokenKind};

/// `@var` read or written.
pub(crate) const USER_VAR: u16 = 1;
/// `@var :=` or `SET @var =`.
pub(crate) const UV_ASSIGN: u16 = 1 << 1;
/// Primary-only function, sequence or variable.
pub(crate) const PRIMARY_FN: u16 = 1 << 2;
/// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
pub(crate) const LOCKING: u16 = 1 << 3;
/// `INTO` (in a SELECT: `INTO @v`, `INTO OUTFILE`, `INTO DUMPFILE`).
pub(crate) const INTO: u16 = 1 << 4;
/// INSERT/UPDATE/DELETE/REPLACE at a statement position inside the statement.
pub(crate) const DML: u16 = 1 << 5;
/// Unterminated string, identifier or comment.
pub(crate) const UNTERMINATED: u16 = 1 << 6;
/// `SET sql_mode = ...` (any scope spelling).
pub(crate) const SQL_MODE: u16 = 1 << 7;
/// `GET_LOCK(`
pub(crate) const GET_LOCK: u16 = 1 << 8;
/// `RELEASE_ALL_LOCKS(`
pub(crate) const RELEASE_ALL_LOCKS: u16 = 1 << 9;

pub(crate) struct Cursor<'a> {
    pub(crate) lx: Lexer<'a>,
    peeked: Option<Token<'a>>,
    peeked_end: usize,
    has_peek: bool,
    done: bool,
    pub(crate) eof: bool,
    /// Parenthesis depth after the last consumed token.
    pub(crate) depth: u32,
    pub(crate) facts: u16,
    pub(crate) autocommit: Option<bool>,
    pub(crate) first_kw: Option<&'a str>,
    /// Kind, keyword and text of the last consumed token.
    prev_kind: Option<TokenKind>,
    pub(crate) prev_kw: Kw,
    prev_sym: u8,
    prev2_kw: Kw,
    pending_dml: bool,
    /// Only body-scan keywords are recognised (see `keywords::BODY`).
    pub(crate) body_mode: bool,
    pub(crate) end: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(lx: Lexer<'a>) -> Self {
        Cursor {
            lx,
            peeked: None,
            peeked_end: 0,
            has_peek: false,
            done: false,
            eof: false,
            depth: 0,
            facts: 0,
            autocommit: None,
            first_kw: None,
            prev_kind: None,
            prev_kw: Kw::None,
            prev_sym: 0,
            prev2_kw: Kw::None,
            pending_dml: false,
            body_mode: false,
            end: 0,
        }
    }

    /// Reset per-statement state.
    pub(crate) fn begin_statement(&mut self) {
        self.done = false;
        self.depth = 0;
        self.facts = 0;
        self.autocommit = None;
        self.first_kw = None;
        self.prev_kind = None;
        self.prev_kw = Kw::None;
        self.prev_sym = 0;
        self.prev2_kw = Kw::None;
        self.pending_dml = false;
        self.body_mode = false;
    }

    #[inline]
    fn raw(&mut self) -> (Option<Token<'a>>, usize) {
        if self.has_peek {
            self.has_peek = false;
            (self.peeked, self.peeked_end)
        } else {
            let t = self.lx.next_token();
            (t, self.lx.position())
        }
    }

    /// The next token of the statement; `None` at `;` or the end of the input.
    #[inline]
    pub(crate) fn next(&mut self) -> Option<Token<'a>> {
        if self.done {
            return None;
        }
        let (t, end) = self.raw();
        match t {
            None => {
                self.done = true;
                self.eof = true;
                None
            }
            Some(t) if t.kind == TokenKind::Semicolon => {
                self.done = true;
                None
            }
            Some(t) => {
                self.end = end;
                self.observe(t);
                Some(t)
            }
        }
    }

    /// Look at the next token of the statement without consuming it.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<Token<'a>> {
        if self.done {
            return None;
        }
        if !self.has_peek {
            self.peeked = self.lx.next_token();
            self.peeked_end = self.lx.position();
            self.has_peek = true;
        }
        match self.peeked {
            Some(t) if t.kind != TokenKind::Semicolon => Some(t),
            _ => None,
        }
    }

    /// Keyword of the next token (`Kw::None` if it is not a word or at the end).
    #[inline]
    pub(crate) fn peek_kw(&mut self) -> Kw {
        match self.peek() {
            Some(t) if t.kind == TokenKind::Word => {
                kw_at(self.lx.source().as_bytes(), t.start, t.text.len())
            }
            _ => Kw::None,
        }
    }

    /// Consume the next token and return its keyword.
    #[inline]
    pub(crate) fn next_kw(&mut self) -> Option<(Token<'a>, Kw)> {
        let t = self.next()?;
        Some((t, self.prev_kw))
    }

    /// True if the last consumed token is the symbol `c` (tracked for `.`, `(` and `)` only).
    #[inline]
    pub(crate) fn prev_is_symbol(&self, c: u8) -> bool {
        self.prev_sym == c
    }

    /// Consume the rest of the statement (only body-scan facts are needed from here on).
    #[inline]
    pub(crate) fn drain(&mut self) {
        self.body_mode = true;
        if self.has_peek && self.next().is_none() {
            return;
        }
        if !self.done {
            // the hot loop: no peek buffer to consult
            loop {
                match self.lx.next_token() {
                    None => {
                        self.eof = true;
                        break;
                    }
                    Some(t) if t.kind == TokenKind::Semicolon => break,
                    Some(t) => {
                        self.end = self.lx.position();
                        self.observe(t);
                    }
                }
            }
            self.done = true;
        }
        if self.pending_dml {
            self.pending_dml = false;
            self.facts |= DML;
        }
    }

    #[inline(always)]
    fn observe(&mut self, t: Token<'a>) {
        let mut k = Kw::None;
        let mut sym = 0;
        if self.pending_dml {
            self.pending_dml = false;
            if !t.is_symbol(b'(') {
                self.facts |= DML;
            }
        }
        match t.kind {
            TokenKind::Word => {
                let src = self.lx.source().as_bytes();
                k = if self.body_mode {
                    body_kw_at(src, t.start, t.text.len())
                } else {
                    kw_at(src, t.start, t.text.len())
                };
                if k != Kw::None {
                    self.observe_kw(k);
                }
            }
            TokenKind::Symbol => match t.text.as_bytes()[0] {
                b'.' => sym = b'.',
                b'(' => {
                    sym = b'(';
                    self.depth = self.depth.saturating_add(1);
                    if self.prev_kind == Some(TokenKind::Word)
                        && matches!(
                            self.prev_kw,
                            Kw::GetLock
                                | Kw::ReleaseLock
                                | Kw::ReleaseAllLocks
                                | Kw::IsUsedLock
                                | Kw::IsFreeLock
                                | Kw::LastInsertId
                                | Kw::Nextval
                                | Kw::Lastval
                                | Kw::Setval
                                | Kw::FoundRows
                                | Kw::RowCount
                                | Kw::ConnectionId
                        )
                    {
                        self.facts |= PRIMARY_FN;
                        match self.prev_kw {
                            Kw::GetLock => self.facts |= GET_LOCK,
                            Kw::ReleaseAllLocks => self.facts |= RELEASE_ALL_LOCKS,
                            _ => {}
                        }
                    }
                }
                b')' => {
                    sym = b')';
                    self.depth = self.depth.saturating_sub(1);
                }
                _ => {}
            },
            TokenKind::UserVar => self.facts |= USER_VAR,
            TokenKind::Assign if self.prev_kind == Some(TokenKind::UserVar) => {
                self.facts |= UV_ASSIGN
            }
            TokenKind::SysVar => {
                let name = sysvar_name(t.text).1;
                if name.eq_ignore_ascii_case("identity")
                    || name.eq_ignore_ascii_case("last_insert_id")
                {
                    self.facts |= PRIMARY_FN;
                }
            }
            TokenKind::Unterminated => self.facts |= UNTERMINATED,
            _ => {}
        }
        self.prev2_kw = self.prev_kw;
        self.prev_kw = k;
        self.prev_kind = Some(t.kind);
        self.prev_sym = sym;
    }

    #[inline]
    fn observe_kw(&mut self, k: Kw) {
        match k {
            Kw::Update | Kw::Share if self.prev_kw == Kw::For => self.facts |= LOCKING,
            Kw::Share if self.prev_kw == Kw::In && self.prev2_kw == Kw::Lock => {
                self.facts |= LOCKING
            }
            Kw::For
                if self.prev_kw == Kw::Value
                    && matches!(self.prev2_kw, Kw::Next | Kw::Previous) =>
            {
                self.facts |= PRIMARY_FN
            }
            Kw::Into => self.facts |= INTO,
            Kw::SqlCalcFoundRows => self.facts |= PRIMARY_FN,
            Kw::Nextval | Kw::Currval | Kw::Lastval if self.prev_is_symbol(b'.') => {
                self.facts |= PRIMARY_FN
            }
            Kw::Insert | Kw::Update | Kw::Delete | Kw::Replace
                if !matches!(self.prev_kw, Kw::For | Kw::Key | Kw::On)
                    && !self.prev_is_symbol(b'.') =>
            {
                self.pending_dml = true
            }
            _ => {}
        }
    }
}

/// Split a system variable (text after `@@`) into (scope, name).
pub(crate) fn sysvar_name(text: &str) -> (Option<Kw>, &str) {
    if let Some(dot) = text.find('.') {
        let scope = kw(&text[..dot]);
        if matches!(
            scope,
            Kw::Session | Kw::Local | Kw::Global | Kw::Persist | Kw::PersistOnly
        ) {
            return (Some(scope), &text[dot + 1..]);
        }
    }
    (None, text)
}
