//! Zero-copy MySQL/MariaDB lexer.
//!
//! The lexer walks the bytes of a `&str` and yields [`Token`]s whose `text`
//! borrows from the input. It skips whitespace and comments (`/* */`,
//! `-- ` and `#`), lexes the *content* of executable comments (`/*! */`,
//! `/*!50100 */`, `/*M! */`, `/*M!100100 */`) as SQL, treats optimizer-hint
//! comments (`/*+ */`) as comments, and remembers the first comment it skipped
//! (for routing hints, see [`crate::hints`]).
//!
//! Token boundaries are always at ASCII bytes or at the ends of the input, and
//! every byte >= 0x80 belongs to a word, so slicing never splits a UTF-8
//! character.

use memchr::{memchr, memchr2, memmem};

/// Lexing options that mirror the session's `sql_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LexOptions {
    /// `ANSI_QUOTES`: `"..."` is an identifier, not a string.
    pub ansi_quotes: bool,
    /// `NO_BACKSLASH_ESCAPES`: a backslash inside a string is an ordinary character.
    pub no_backslash_escapes: bool,
}

/// What kind of token the lexer produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An unquoted identifier or keyword (`SELECT`, `sbtest1`, `_utf8mb4`).
    Word,
    /// A number (`42`, `3.14`); hex and exponent forms may come out as [`TokenKind::Word`].
    Number,
    /// A quoted identifier: `` `name` `` or, with `ANSI_QUOTES`, `"name"`.
    /// `text` is the content without the quotes (doubled quote characters kept as they are).
    QuotedIdent,
    /// A string literal; `text` is the raw content between the quotes (escapes not processed).
    String,
    /// A user variable `@name`, `@'name'`, `` @`name` ``; `text` is the name.
    UserVar,
    /// A system variable `@@name` or `@@scope.name`; `text` is what follows `@@`.
    SysVar,
    /// The assignment operator `:=`.
    Assign,
    /// The statement separator `;`.
    Semicolon,
    /// Any other single punctuation byte; `text` is that byte.
    Symbol,
    /// An unterminated string, quoted identifier or comment; `text` is the rest of the input.
    Unterminated,
}

/// One token, borrowing from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    /// The token's kind.
    pub kind: TokenKind,
    /// The token text (content only for quoted kinds, see [`TokenKind`]).
    pub text: &'a str,
    /// Byte offset of the token's first byte (including any quote or `@`) in the input.
    pub start: usize,
}

impl Token<'_> {
    /// True if this is the punctuation symbol `c`.
    #[inline]
    pub fn is_symbol(&self, c: u8) -> bool {
        self.kind == TokenKind::Symbol && self.text.as_bytes().first() == Some(&c)
    }

    /// True for a word or a quoted identifier: something that can name an object.
    #[inline]
    pub fn is_ident_like(&self) -> bool {
        matches!(self.kind, TokenKind::Word | TokenKind::QuotedIdent)
    }
}

/// What kind of comment was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommentKind {
    /// `/* ... */`
    Block,
    /// `/*+ ... */` (optimizer hints)
    OptimizerHint,
    /// `-- ...` or `# ...` up to the end of the line
    Line,
}

/// A skipped comment: its kind and its body (without the delimiters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comment<'a> {
    /// Kind of comment.
    pub kind: CommentKind,
    /// Body text without `/*`, `/*+`, `*/`, `--`, `#`.
    pub body: &'a str,
}

const WORD: u8 = 1;
const SPACE: u8 = 2;
/// A single-byte symbol with no special meaning (fast path).
const SIMPLE: u8 = 3;

const fn build_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            t[i] = WORD;
        } else if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' || c == 0x0b || c == 0x0c {
            t[i] = SPACE;
        } else if matches!(
            c,
            b'(' | b')'
                | b','
                | b'.'
                | b'='
                | b'<'
                | b'>'
                | b'+'
                | b'!'
                | b'%'
                | b'&'
                | b'|'
                | b'^'
                | b'~'
                | b'?'
                | b'['
                | b']'
                | b'{'
                | b'}'
        ) {
            t[i] = SIMPLE;
        }
        i += 1;
    }
    t
}

static CLASSES: [u8; 256] = build_classes();

/// The first byte among the 8 at `at` that is `q` (or, when `backslash`, a backslash):
/// `Some(Some(index))`, `Some(None)` when none is; `None` when fewer than 8 bytes remain. The
/// classic has-zero-byte test on the word XORed with the byte repeated: its lowest flagged
/// byte is exact (flags above it can be false, from the borrow).
#[inline(always)]
fn quote_in_word(b: &[u8], at: usize, q: u8, backslash: bool) -> Option<Option<usize>> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let w = u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?);
    let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let mut m = zeros(w ^ (ONES * u64::from(q)));
    if backslash {
        m |= zeros(w ^ (ONES * u64::from(b'\\')));
    }
    Some((m != 0).then(|| at + (m.trailing_zeros() / 8) as usize))
}

#[inline(always)]
pub(crate) fn is_word_byte(b: u8) -> bool {
    CLASSES[b as usize] == WORD
}

#[inline(always)]
fn is_space(b: u8) -> bool {
    CLASSES[b as usize] == SPACE
}

/// The lexer: an iterator of [`Token`]s over a `&str`.
///
/// Cloning is cheap (a few words) and is how callers look ahead.
#[derive(Clone, Debug)]
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    opts: LexOptions,
    in_exec: bool,
    first_comment: Option<Comment<'a>>,
}

impl<'a> Lexer<'a> {
    /// A lexer over `src`.
    pub fn new(src: &'a str, opts: LexOptions) -> Self {
        Lexer {
            src,
            pos: 0,
            opts,
            in_exec: false,
            first_comment: None,
        }
    }

    /// The input.
    pub fn source(&self) -> &'a str {
        self.src
    }

    /// Byte offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The first non-executable comment skipped so far, if any.
    pub fn first_comment(&self) -> Option<Comment<'a>> {
        self.first_comment
    }

    #[inline]
    fn note_comment(&mut self, kind: CommentKind, body_start: usize, body_end: usize) {
        if self.first_comment.is_none() {
            self.first_comment = Some(Comment {
                kind,
                body: &self.src[body_start..body_end],
            });
        }
    }

    #[inline]
    fn unterminated(&mut self, start: usize) -> Token<'a> {
        let len = self.src.len();
        self.pos = len;
        self.in_exec = false;
        Token {
            kind: TokenKind::Unterminated,
            text: &self.src[start..],
            start,
        }
    }

    /// Skip whitespace and comments. Returns an `Unterminated` token if a comment never ends.
    #[inline]
    fn skip_trivia(&mut self) -> Option<Token<'a>> {
        let b = self.src.as_bytes();
        let len = b.len();
        loop {
            while self.pos < len && is_space(b[self.pos]) {
                self.pos += 1;
            }
            if self.pos >= len {
                return None;
            }
            let c = b[self.pos];
            let next = if self.pos + 1 < len {
                b[self.pos + 1]
            } else {
                0
            };
            match c {
                b'/' if next == b'*' => {
                    let start = self.pos;
                    let after = self.pos + 2;
                    let third = b.get(after).copied().unwrap_or(0);
                    let exec_at = if third == b'!' {
                        Some(after + 1)
                    } else if third == b'M' && b.get(after + 1) == Some(&b'!') {
                        Some(after + 2)
                    } else {
                        None
                    };
                    if let Some(at) = exec_at {
                        // A version of all nines (`/*!99999`, `/*M!999999\- enable the sandbox
                        // mode */` from mariadb-dump) means "no server": a plain comment.
                        if !self.skip_version(at) {
                            self.in_exec = true;
                            continue;
                        }
                    }
                    let (kind, body_start) = if third == b'+' {
                        (CommentKind::OptimizerHint, after + 1)
                    } else {
                        (CommentKind::Block, after)
                    };
                    match memmem::find(&b[after..], b"*/") {
                        Some(off) => {
                            let end = after + off;
                            // `/*+*/` : the '+' is also the '*' of nothing; keep bounds sane.
                            let body_start = body_start.min(end);
                            self.note_comment(kind, body_start, end);
                            self.pos = end + 2;
                        }
                        None => return Some(self.unterminated(start)),
                    }
                }
                b'*' if self.in_exec && next == b'/' => {
                    self.in_exec = false;
                    self.pos += 2;
                }
                b'-' if next == b'-' && (self.pos + 2 >= len || b[self.pos + 2] <= b' ') => {
                    self.line_comment(self.pos + 2);
                }
                b'#' => self.line_comment(self.pos + 1),
                _ => return None,
            }
        }
    }

    #[inline]
    fn line_comment(&mut self, body_start: usize) {
        let b = self.src.as_bytes();
        let end = memchr(b'\n', &b[body_start..]).map_or(b.len(), |o| body_start + o);
        let body_end = if end > body_start && b[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        self.note_comment(CommentKind::Line, body_start, body_end);
        self.pos = (end + 1).min(b.len());
    }

    /// Skip the server version of an executable comment starting at `at`: 5 digits
    /// (MySQL `50100`) or 6 (MariaDB `100100`, MySQL 8.0.34+ `080034`). Returns true
    /// for an all-nines version, which no server runs (the caller then treats the
    /// comment as an ordinary one and leaves `pos` alone).
    fn skip_version(&mut self, at: usize) -> bool {
        let b = self.src.as_bytes();
        let mut n = 0;
        while at + n < b.len() && b[at + n].is_ascii_digit() && n < 6 {
            n += 1;
        }
        if n >= 5 && b[at..at + n].iter().all(|&d| d == b'9') {
            return true;
        }
        self.pos = if n >= 5 { at + n } else { at };
        false
    }

    /// The next token, or `None` at the end of the input.
    #[inline(always)]
    pub fn next_token(&mut self) -> Option<Token<'a>> {
        // Fast path: optional spaces, then a word or a plain symbol.
        let b = self.src.as_bytes();
        let mut pos = self.pos;
        while pos < b.len() && b[pos] == b' ' {
            pos += 1;
        }
        if pos >= b.len() && !self.in_exec {
            self.pos = pos;
            return None;
        }
        if pos < b.len() {
            match CLASSES[b[pos] as usize] {
                WORD => {
                    self.pos = pos;
                    return Some(self.word());
                }
                SIMPLE => {
                    self.pos = pos + 1;
                    return Some(Token {
                        kind: TokenKind::Symbol,
                        text: &self.src[pos..pos + 1],
                        start: pos,
                    });
                }
                _ if b[pos] == b'`' => {
                    self.pos = pos;
                    return Some(self.quoted(b'`', TokenKind::QuotedIdent, false));
                }
                _ if b[pos] == b'\'' => {
                    self.pos = pos;
                    return Some(self.quoted(
                        b'\'',
                        TokenKind::String,
                        !self.opts.no_backslash_escapes,
                    ));
                }
                _ => {}
            }
        }
        self.pos = pos;
        self.next_token_slow()
    }

    #[inline(never)]
    fn next_token_slow(&mut self) -> Option<Token<'a>> {
        if let Some(t) = self.skip_trivia() {
            return Some(t);
        }
        let b = self.src.as_bytes();
        let len = b.len();
        if self.pos >= len {
            if self.in_exec {
                // `/*!` never closed.
                self.in_exec = false;
                return Some(Token {
                    kind: TokenKind::Unterminated,
                    text: "",
                    start: len,
                });
            }
            return None;
        }
        let start = self.pos;
        let c = b[start];
        Some(match c {
            b'\'' => self.quoted(b'\'', TokenKind::String, !self.opts.no_backslash_escapes),
            b'"' if self.opts.ansi_quotes => self.quoted(b'"', TokenKind::QuotedIdent, false),
            b'"' => self.quoted(b'"', TokenKind::String, !self.opts.no_backslash_escapes),
            b'`' => self.quoted(b'`', TokenKind::QuotedIdent, false),
            b'@' => self.variable(),
            b';' => self.single(TokenKind::Semicolon),
            b':' if b.get(start + 1) == Some(&b'=') => {
                self.pos += 2;
                Token {
                    kind: TokenKind::Assign,
                    text: &self.src[start..start + 2],
                    start,
                }
            }
            _ if is_word_byte(c) => self.word(),
            _ => self.single(TokenKind::Symbol),
        })
    }

    #[inline]
    fn single(&mut self, kind: TokenKind) -> Token<'a> {
        let start = self.pos;
        self.pos += 1;
        Token {
            kind,
            text: &self.src[start..start + 1],
            start,
        }
    }

    #[inline(always)]
    fn word(&mut self) -> Token<'a> {
        let b = self.src.as_bytes();
        let start = self.pos;
        let rest = &b[start + 1..];
        let mut i = start
            + 1
            + rest
                .iter()
                .position(|&c| !is_word_byte(c))
                .unwrap_or(rest.len());
        let mut kind = TokenKind::Word;
        if b[start].is_ascii_digit() && b[start..i].iter().all(u8::is_ascii_digit) {
            kind = TokenKind::Number;
            // decimal part: 3.14
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
        self.pos = i;
        Token {
            kind,
            text: &self.src[start..i],
            start,
        }
    }

    /// Lex a quoted token starting at `self.pos` (which holds `q`).
    #[inline]
    fn quoted(&mut self, q: u8, kind: TokenKind, backslash: bool) -> Token<'a> {
        let start = self.pos;
        match self.find_close(start + 1, q, backslash) {
            Some(end) => {
                self.pos = end + 1;
                Token {
                    kind,
                    text: &self.src[start + 1..end],
                    start,
                }
            }
            None => self.unterminated(start),
        }
    }

    /// Find the closing quote `q` at or after `from`, honouring doubled quotes and
    /// (if `backslash`) backslash escapes. Returns its index.
    #[inline]
    fn find_close(&self, from: usize, q: u8, backslash: bool) -> Option<usize> {
        let b = self.src.as_bytes();
        let mut i = from;
        loop {
            if i >= b.len() {
                return None;
            }
            // Short literals and identifiers are the common case: 8 bytes at a time over the
            // first 16 beat a memchr call and a byte loop (callgrind, the benchmark's INSERT:
            // 786 instructions in `quoted` with the byte loop, 477 with words); longer ones go
            // to memchr.
            let stop = (i + 16).min(b.len());
            let mut j = i;
            loop {
                match quote_in_word(b, j, q, backslash) {
                    Some(Some(at)) if at < stop => {
                        j = at;
                        break;
                    }
                    Some(None) if j + 8 < stop => j += 8,
                    Some(_) => {
                        j = stop;
                        break;
                    }
                    None => {
                        // Fewer than 8 bytes left in the input.
                        while j < stop && b[j] != q && !(backslash && b[j] == b'\\') {
                            j += 1;
                        }
                        break;
                    }
                }
            }
            if j == stop {
                let rest = &b[stop..];
                j = stop
                    + if backslash {
                        memchr2(q, b'\\', rest)?
                    } else {
                        memchr(q, rest)?
                    };
            }
            // a backslash escape, or a doubled quote
            if (backslash && b[j] == b'\\') || (j + 1 < b.len() && b[j + 1] == q) {
                i = j + 2;
            } else {
                return Some(j);
            }
        }
    }

    fn variable(&mut self) -> Token<'a> {
        let b = self.src.as_bytes();
        let start = self.pos;
        // `'user'@'host'`, `root@localhost`: an '@' glued to a name is not a variable.
        // (Whatever precedes '@' was the end of the previous token, since we are
        // between tokens.)
        if start > 0 && (matches!(b[start - 1], b'\'' | b'"' | b'`') || is_word_byte(b[start - 1]))
        {
            return self.single(TokenKind::Symbol);
        }
        let next = b.get(start + 1).copied().unwrap_or(0);
        if next == b'@' {
            let mut i = start + 2;
            while i < b.len() && (is_word_byte(b[i]) || b[i] == b'.') {
                i += 1;
            }
            if i == start + 2 {
                if b.get(i) == Some(&b'`') {
                    // @@`name`
                    if let Some(end) = self.find_close(i + 1, b'`', false) {
                        self.pos = end + 1;
                        return Token {
                            kind: TokenKind::SysVar,
                            text: &self.src[i + 1..end],
                            start,
                        };
                    }
                    return self.unterminated(start);
                }
                return self.single(TokenKind::Symbol);
            }
            self.pos = i;
            return Token {
                kind: TokenKind::SysVar,
                text: &self.src[start + 2..i],
                start,
            };
        }
        match next {
            b'\'' | b'"' | b'`' => {
                let backslash = next != b'`' && !self.opts.no_backslash_escapes;
                match self.find_close(start + 2, next, backslash) {
                    Some(end) => {
                        self.pos = end + 1;
                        Token {
                            kind: TokenKind::UserVar,
                            text: &self.src[start + 2..end],
                            start,
                        }
                    }
                    None => self.unterminated(start),
                }
            }
            _ => {
                let mut i = start + 1;
                while i < b.len() && (is_word_byte(b[i]) || b[i] == b'.') {
                    i += 1;
                }
                if i == start + 1 {
                    return self.single(TokenKind::Symbol);
                }
                self.pos = i;
                Token {
                    kind: TokenKind::UserVar,
                    text: &self.src[start + 1..i],
                    start,
                }
            }
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    #[inline]
    fn next(&mut self) -> Option<Token<'a>> {
        self.next_token()
    }
}

#[cfg(test)]
mod tests;
