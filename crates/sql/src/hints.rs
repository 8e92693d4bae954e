//! Routing hints carried in the first comment of a query.
//!
//! Recognised forms (the `lagless:` prefix is lowercase; the directive is
//! case-insensitive), in a `/* */`, `/*+ */`, `-- ` or `#` comment, possibly
//! among other words such as optimizer hints:
//!
//! * `/* lagless:primary */`
//! * `/* lagless:replica */`
//! * `/* lagless:backend=NAME */` (NAME: ASCII letters, digits, `_`, `-`, `.`, `:`)
//! * `SELECT /*+ MAX_EXECUTION_TIME(100) lagless:replica */ ...`
//!
//! Only the first comment of the text is examined: a hint further down is
//! ignored, so user data interpolated later in a statement cannot inject one.
//! Executable comments (`/*! */`) are SQL, not comments, and never carry hints.

use crate::lexer::{is_word_byte, Comment};
use memchr::memmem;

/// A routing hint: where the query asks to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoutingHint<'a> {
    /// `lagless:primary`
    Primary,
    /// `lagless:replica`
    Replica,
    /// `lagless:backend=NAME`; the name borrows from the query text.
    Backend(&'a str),
}

const PREFIX: &[u8] = b"lagless:";

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
}

/// Parse the hint (if any) in a comment body. The first well-formed `lagless:`
/// directive wins; malformed ones are ignored.
pub fn parse_hint(body: &str) -> Option<RoutingHint<'_>> {
    let b = body.as_bytes();
    let mut from = 0;
    while let Some(off) = memmem::find(&b[from..], PREFIX) {
        let at = from + off;
        from = at + PREFIX.len();
        // must start a word
        if at > 0 && (is_word_byte(b[at - 1]) || b[at - 1] == b':') {
            continue;
        }
        let rest = &b[from..];
        let word_len = rest
            .iter()
            .position(|&c| !(is_name_byte(c) || c == b'='))
            .unwrap_or(rest.len());
        let word = &rest[..word_len];
        if word.eq_ignore_ascii_case(b"primary") || word.eq_ignore_ascii_case(b"master") {
            return Some(RoutingHint::Primary);
        }
        if word.eq_ignore_ascii_case(b"replica") || word.eq_ignore_ascii_case(b"slave") {
            return Some(RoutingHint::Replica);
        }
        if word.len() > 8 && word[..8].eq_ignore_ascii_case(b"backend=") {
            let name = &word[8..];
            if !name.is_empty() && name.iter().all(|&c| is_name_byte(c)) {
                // all ASCII, so these are char boundaries
                return Some(RoutingHint::Backend(&body[from + 8..from + word_len]));
            }
        }
    }
    None
}

/// The hint in a lexer's first comment, if any.
pub(crate) fn from_comment(c: Option<Comment<'_>>) -> Option<RoutingHint<'_>> {
    c.and_then(|c| parse_hint(c.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse_hint(" lagless:primary "), Some(RoutingHint::Primary));
        assert_eq!(parse_hint("lagless:REPLICA"), Some(RoutingHint::Replica));
        assert_eq!(
            parse_hint(" lagless:backend=db-3.eu "),
            Some(RoutingHint::Backend("db-3.eu"))
        );
        assert_eq!(
            parse_hint(" MAX_EXECUTION_TIME(1000) lagless:replica BKA(t1) "),
            Some(RoutingHint::Replica)
        );
        assert_eq!(
            parse_hint("app=x,lagless:primary"),
            Some(RoutingHint::Primary)
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(parse_hint(" lagless:bogus "), None);
        assert_eq!(parse_hint(" xlagless:primary "), None);
        assert_eq!(parse_hint(" lagless:backend= "), None);
        assert_eq!(parse_hint(" lagless:primaryx "), None);
        assert_eq!(parse_hint(" LAGLESS:primary "), None);
        assert_eq!(parse_hint(""), None);
        assert_eq!(parse_hint("lagless:"), None);
        // a bad one, then a good one
        assert_eq!(
            parse_hint("lagless:nope lagless:replica"),
            Some(RoutingHint::Replica)
        );
    }
}
