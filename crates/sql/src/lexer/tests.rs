use super::*;

fn toks(sql: &str) -> Vec<(TokenKind, &str)> {
    toks_with(sql, LexOptions::default())
}

fn toks_with(sql: &str, opts: LexOptions) -> Vec<(TokenKind, &str)> {
    Lexer::new(sql, opts).map(|t| (t.kind, t.text)).collect()
}

use TokenKind::*;

#[test]
fn words_numbers_symbols() {
    assert_eq!(
        toks("SELECT c FROM sbtest1 WHERE id=42"),
        vec![
            (Word, "SELECT"),
            (Word, "c"),
            (Word, "FROM"),
            (Word, "sbtest1"),
            (Word, "WHERE"),
            (Word, "id"),
            (Symbol, "="),
            (Number, "42")
        ]
    );
    assert_eq!(toks("3.14"), vec![(Number, "3.14")]);
    assert_eq!(toks("t.c"), vec![(Word, "t"), (Symbol, "."), (Word, "c")]);
    assert_eq!(toks("1abc"), vec![(Word, "1abc")]);
    assert_eq!(toks("héllo wörld"), vec![(Word, "héllo"), (Word, "wörld")]);
}

#[test]
fn block_and_line_comments() {
    assert_eq!(
        toks("/* x; */ SELECT 1"),
        vec![(Word, "SELECT"), (Number, "1")]
    );
    assert_eq!(
        toks("SELECT 1 -- c; \n, 2"),
        vec![
            (Word, "SELECT"),
            (Number, "1"),
            (Symbol, ","),
            (Number, "2")
        ]
    );
    assert_eq!(
        toks("SELECT 1 # c;\n;"),
        vec![(Word, "SELECT"), (Number, "1"), (Semicolon, ";")]
    );
    assert_eq!(toks("SELECT 1 --"), vec![(Word, "SELECT"), (Number, "1")]);
    assert_eq!(toks("--\tx\nSELECT"), vec![(Word, "SELECT")]);
}

#[test]
fn double_dash_needs_space() {
    // 5--3 is 5 - (-3) in MySQL
    assert_eq!(
        toks("SELECT 5--3"),
        vec![
            (Word, "SELECT"),
            (Number, "5"),
            (Symbol, "-"),
            (Symbol, "-"),
            (Number, "3")
        ]
    );
}

#[test]
fn executable_comments_are_lexed() {
    assert_eq!(
        toks("/*!40101 SET NAMES utf8 */"),
        vec![(Word, "SET"), (Word, "NAMES"), (Word, "utf8")]
    );
    assert_eq!(
        toks("/*!SET x=1*/"),
        vec![(Word, "SET"), (Word, "x"), (Symbol, "="), (Number, "1")]
    );
    assert_eq!(
        toks("/*M!100100 FOR UPDATE */ ;"),
        vec![(Word, "FOR"), (Word, "UPDATE"), (Semicolon, ";")]
    );
    assert_eq!(toks("/*M! x */"), vec![(Word, "x")]);
    assert_eq!(
        toks("CREATE TABLE t (a int) /*!50100 PARTITION BY HASH(a) */"),
        vec![
            (Word, "CREATE"),
            (Word, "TABLE"),
            (Word, "t"),
            (Symbol, "("),
            (Word, "a"),
            (Word, "int"),
            (Symbol, ")"),
            (Word, "PARTITION"),
            (Word, "BY"),
            (Word, "HASH"),
            (Symbol, "("),
            (Word, "a"),
            (Symbol, ")")
        ]
    );
    // a string inside an executable comment may contain */
    assert_eq!(
        toks("/*! SELECT '*/' */ x"),
        vec![(Word, "SELECT"), (String, "*/"), (Word, "x")]
    );
    // unclosed executable comment
    assert_eq!(
        toks("/*! SELECT 1"),
        vec![(Word, "SELECT"), (Number, "1"), (Unterminated, "")]
    );
    // mysqlbinlog's empty one
    assert_eq!(toks("/*!*/;"), vec![(Semicolon, ";")]);
    // never-executed versions are comments
    assert_eq!(
        toks("/*M!999999\\- enable the sandbox mode */ x"),
        vec![(Word, "x")]
    );
    assert_eq!(toks("/*!99999 SELECT */ x"), vec![(Word, "x")]);
    assert_eq!(toks("/*!9999 x */"), vec![(Number, "9999"), (Word, "x")]);
}

#[test]
fn optimizer_hints_are_comments() {
    let mut lx = Lexer::new(
        "SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1",
        LexOptions::default(),
    );
    assert_eq!(lx.next_token().unwrap().text, "SELECT");
    assert_eq!(lx.next_token().unwrap().text, "1");
    assert_eq!(
        lx.first_comment(),
        Some(Comment {
            kind: CommentKind::OptimizerHint,
            body: " MAX_EXECUTION_TIME(1000) "
        })
    );
}

#[test]
fn first_comment_only() {
    let mut lx = Lexer::new("/* a */ -- b\n SELECT /* c */", LexOptions::default());
    while lx.next_token().is_some() {}
    assert_eq!(lx.first_comment().unwrap().body, " a ");
    let mut lx = Lexer::new("# hash\r\nSELECT", LexOptions::default());
    while lx.next_token().is_some() {}
    assert_eq!(lx.first_comment().unwrap().body, " hash");
}

#[test]
fn strings_and_escapes() {
    assert_eq!(toks(r"'a\'b;' x"), vec![(String, r"a\'b;"), (Word, "x")]);
    assert_eq!(toks("'it''s' x"), vec![(String, "it''s"), (Word, "x")]);
    assert_eq!(toks(r#""a\"b" x"#), vec![(String, r#"a\"b"#), (Word, "x")]);
    assert_eq!(toks(r"'a\\' x"), vec![(String, r"a\\"), (Word, "x")]);
    assert_eq!(
        toks("'/* -- # ;' x"),
        vec![(String, "/* -- # ;"), (Word, "x")]
    );
    assert_eq!(toks("'abc"), vec![(Unterminated, "'abc")]);
    assert_eq!(toks(r"'abc\"), vec![(Unterminated, r"'abc\")]);
}

#[test]
fn no_backslash_escapes() {
    let o = LexOptions {
        no_backslash_escapes: true,
        ..Default::default()
    };
    // with NO_BACKSLASH_ESCAPES, 'a\' is a complete string
    assert_eq!(
        toks_with(r"'a\' ; 'b'", o),
        vec![(String, r"a\"), (Semicolon, ";"), (String, "b")]
    );
    assert_eq!(
        toks(r"'a\' ; 'b'"),
        vec![(String, r"a\' ; "), (Word, "b"), (Unterminated, "'")]
    );
}

#[test]
fn identifiers_and_ansi_quotes() {
    assert_eq!(toks("`a``b;` x"), vec![(QuotedIdent, "a``b;"), (Word, "x")]);
    assert_eq!(toks("\"t\""), vec![(String, "t")]);
    let o = LexOptions {
        ansi_quotes: true,
        ..Default::default()
    };
    assert_eq!(
        toks_with(r#""a""b" x"#, o),
        vec![(QuotedIdent, r#"a""b"#), (Word, "x")]
    );
    assert_eq!(
        toks_with(r#""a\" x"#, o),
        vec![(QuotedIdent, r"a\"), (Word, "x")]
    );
    assert_eq!(toks("`abc"), vec![(Unterminated, "`abc")]);
}

#[test]
fn variables() {
    assert_eq!(
        toks("@a := @@session.autocommit + @@x + @'q r' + @`b`"),
        vec![
            (UserVar, "a"),
            (Assign, ":="),
            (SysVar, "session.autocommit"),
            (Symbol, "+"),
            (SysVar, "x"),
            (Symbol, "+"),
            (UserVar, "q r"),
            (Symbol, "+"),
            (UserVar, "b")
        ]
    );
    // user@host is not a variable
    assert_eq!(
        toks("'u'@'localhost' root@localhost"),
        vec![
            (String, "u"),
            (Symbol, "@"),
            (String, "localhost"),
            (Word, "root"),
            (Symbol, "@"),
            (Word, "localhost")
        ]
    );
    assert_eq!(toks("@ x"), vec![(Symbol, "@"), (Word, "x")]);
    assert_eq!(toks("@@"), vec![(Symbol, "@"), (Symbol, "@")]);
}

#[test]
fn unterminated_comment() {
    assert_eq!(
        toks("SELECT /* x"),
        vec![(Word, "SELECT"), (Unterminated, "/* x")]
    );
    assert_eq!(toks("/*/"), vec![(Unterminated, "/*/")]);
    assert_eq!(toks("/**/x"), vec![(Word, "x")]);
    assert_eq!(toks("/*+*/x"), vec![(Word, "x")]);
}

/// The reference for `find_close`: byte by byte.
fn naive_close(b: &[u8], from: usize, q: u8, backslash: bool) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

#[test]
fn quoted_literals_end_where_a_byte_by_byte_scan_says_at_every_length_and_offset() {
    // Quotes, doubled quotes and backslashes at every place around the 8-byte words the
    // scanner reads, near and at the end of the input.
    for len in 0..40usize {
        for special in 0..len.max(1) {
            for (fill, q, backslash) in [
                (b'\'', b'\'', true),
                (b'\'', b'\'', false),
                (b'\\', b'\'', true),
                (b'\\', b'\'', false),
                (b'`', b'`', false),
                (b'"', b'"', true),
            ] {
                for tail in ["", "x", "' AND b = 'y'", "`"] {
                    let mut body = vec![b'a'; len];
                    if special < len {
                        body[special] = fill;
                    }
                    let mut text = vec![q];
                    text.extend_from_slice(&body);
                    text.extend_from_slice(tail.as_bytes());
                    let Ok(sql) = std::str::from_utf8(&text) else {
                        continue;
                    };
                    let opts = LexOptions {
                        ansi_quotes: q == b'"',
                        no_backslash_escapes: !backslash,
                    };
                    let kind = if q == b'\'' { String } else { QuotedIdent };
                    let t = Lexer::new(sql, opts).next_token().unwrap();
                    match naive_close(sql.as_bytes(), 1, q, backslash && q != b'`' && q != b'"') {
                        Some(end) => {
                            assert_eq!((t.kind, t.text), (kind, &sql[1..end]), "{sql:?}")
                        }
                        None => assert_eq!(t.kind, Unterminated, "{sql:?}"),
                    }
                }
            }
        }
    }
}
