//! `SET NAMES cs [COLLATE co]`, which drivers send on new connections (PyMySQL on every one).
//!
//! - MariaDB's session tracking reports the three character sets it sets but not
//!   `collation_connection`, so Lagless takes the collation from the statement; otherwise a
//!   replica connection replaying the session's character sets would get their default
//!   collation instead.
//! - Once a primary has answered a statement, Lagless answers the same text itself: what the
//!   server set is kept per primary and statement (`ProxyContext::set_names_result`) and
//!   applied to the session's tracked state, to be replayed on backend connections like any
//!   variable the client set. A connection per web request then costs no round trip to the
//!   primary for it. An unknown character set is never kept (the server's error each time).

/// For a statement that is exactly `SET NAMES cs [COLLATE co]` (names as words or quoted, an
/// optional trailing `;`): its collation, lower-cased as the server reports it, or `Some(None)`
/// without COLLATE (the character set's default). `None` for anything else (another assignment
/// after a comma, `DEFAULT`, comments), which is left to session tracking alone.
pub fn names_collation(sql: &str) -> Option<Option<String>> {
    let rest = word(sql.trim(), "set")?;
    let rest = word(rest, "names")?;
    let (charset, rest) = name(rest)?;
    if charset.eq_ignore_ascii_case("default") {
        return None;
    }
    let (collation, rest) = match word(rest, "collate") {
        Some(after) => {
            let (co, rest) = name(after)?;
            (Some(co.to_ascii_lowercase()), rest)
        }
        None => (None, rest),
    };
    let rest = rest.trim_start();
    (rest.is_empty() || rest == ";").then_some(collation)
}

/// `text` without its leading keyword `kw` (case-insensitive) and the whitespace after it.
fn word<'a>(text: &'a str, kw: &str) -> Option<&'a str> {
    let text = text.trim_start();
    let head = text.get(..kw.len())?;
    let rest = &text[kw.len()..];
    (head.eq_ignore_ascii_case(kw) && rest.starts_with(|c: char| c.is_ascii_whitespace()))
        .then(|| rest.trim_start())
}

/// A character set or collation name, bare or quoted with ', " or `: letters, digits, `_`.
fn name(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let (quote, body) = match text.chars().next()? {
        q @ ('\'' | '"' | '`') => (Some(q), &text[1..]),
        _ => (None, text),
    };
    let len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    if len == 0 {
        return None;
    }
    let (n, rest) = body.split_at(len);
    match quote {
        Some(q) => rest.strip_prefix(q).map(|rest| (n, rest)),
        None => Some((n, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::names_collation;

    #[test]
    fn only_a_plain_set_names_is_recognised() {
        for (sql, co) in [
            (
                "set names 'utf8mb4' collate 'utf8mb4_unicode_ci'",
                "utf8mb4_unicode_ci",
            ),
            ("  SET  NAMES `latin1` COLLATE Latin1_Bin;", "latin1_bin"),
            ("SET NAMES utf8mb4 COLLATE \"utf8mb4_bin\" ;", "utf8mb4_bin"),
        ] {
            assert_eq!(names_collation(sql), Some(Some(co.to_string())), "{sql}");
        }
        assert_eq!(names_collation("SET NAMES utf8mb4"), Some(None));
        assert_eq!(names_collation("set names 'latin1';"), Some(None));
        for other in [
            "SET NAMES DEFAULT COLLATE x",
            "SET NAMES utf8mb4 COLLATE utf8mb4_bin, @a = 1",
            "SET NAMES utf8mb4 COLLATE utf8mb4_bin; SELECT 1",
            "SET NAMES 'utf8mb4 COLLATE utf8mb4_bin",
            "SET NAMES utf8mb4 COLLATE",
            "SET NAMES /* c */ utf8mb4 COLLATE utf8mb4_bin",
            "SET NAMESutf8 COLLATE x",
            "SET CHARACTER SET utf8mb4",
            "SELECT 1",
        ] {
            assert_eq!(names_collation(other), None, "{other}");
        }
    }
}
