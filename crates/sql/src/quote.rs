//! Writing SQL string literals: the one escaping routine for statements Lagless builds itself
//! (control-plane statements, causal tokens), so that every part quotes the same way.

/// `text` as a single-quoted SQL string literal, escaping quotes, backslashes and NUL. Correct
/// for servers without `NO_BACKSLASH_ESCAPES` (Lagless's own control connections run without it).
pub fn quote_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::quote_literal;

    #[test]
    fn escapes_quotes_backslashes_and_nul() {
        assert_eq!(quote_literal("0-1-12"), "'0-1-12'");
        assert_eq!(quote_literal("a'b\\c\0"), "'a''b\\\\c\\0'");
        assert_eq!(quote_literal(""), "''");
    }
}
