//! `classify`, `statements` and `tables` are total: no panic on any input, and
//! their results are consistent with each other.

use lagless_sql::{classify, statements, tables, LexOptions, StatementClass};
use proptest::prelude::*;

fn all_opts() -> [LexOptions; 4] {
    [
        LexOptions::default(),
        LexOptions {
            ansi_quotes: true,
            no_backslash_escapes: false,
        },
        LexOptions {
            ansi_quotes: false,
            no_backslash_escapes: true,
        },
        LexOptions {
            ansi_quotes: true,
            no_backslash_escapes: true,
        },
    ]
}

fn check_total(sql: &str) -> Result<(), TestCaseError> {
    for opts in all_opts() {
        let c = classify(sql, &opts);
        let parts: Vec<_> = statements(sql, &opts).collect();
        prop_assert_eq!(c.statement_count as usize, parts.len());
        prop_assert_eq!(c.multi, parts.len() > 1);
        prop_assert_eq!(c.statement_count == 0, c.class == StatementClass::Empty);
        let max_rank = parts.iter().map(|p| p.class.rank()).max().unwrap_or(0);
        prop_assert_eq!(c.class.rank(), max_rank);
        if let Some(last_max) = parts.iter().rev().find(|p| p.class.rank() == max_rank) {
            prop_assert_eq!(c.class, last_max.class);
        }
        prop_assert_eq!(c.first_keyword, parts.first().and_then(|p| p.first_keyword));
        for p in &parts {
            prop_assert_eq!(p.statement_count, 1);
            // each statement's text is a slice of the input
            let off = p.text.as_ptr() as usize - sql.as_ptr() as usize;
            prop_assert!(off + p.text.len() <= sql.len());
        }
        let n = tables(sql, &opts).count();
        prop_assert!(n <= sql.len());
        let _ = c.class.to_string();
    }
    Ok(())
}

/// SQL-ish fragments, to reach the classifier's deeper paths more often than random text.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "SELECT",
        "select",
        "FROM",
        "t",
        "`t`",
        "\"t\"",
        "'s'",
        "'",
        "\"",
        "`",
        "\\",
        ";",
        " ",
        "\n",
        "/*",
        "*/",
        "/*!",
        "/*!50100",
        "/*M!",
        "/*M!100100",
        "/*+",
        "--",
        "-- ",
        "#",
        "@",
        "@@",
        "@a",
        "@@session.",
        ":=",
        "=",
        ",",
        "(",
        ")",
        ".",
        "*",
        "FOR",
        "UPDATE",
        "SHARE",
        "LOCK",
        "IN",
        "MODE",
        "INTO",
        "OUTFILE",
        "@x",
        "SET",
        "autocommit",
        "GLOBAL",
        "SESSION",
        "TRANSACTION",
        "READ",
        "ONLY",
        "WRITE",
        "NAMES",
        "CHARACTER",
        "STATEMENT",
        "WITH",
        "RECURSIVE",
        "AS",
        "INSERT",
        "DELETE",
        "REPLACE",
        "BEGIN",
        "START",
        "COMMIT",
        "ROLLBACK",
        "TO",
        "SAVEPOINT",
        "RELEASE",
        "XA",
        "CHAIN",
        "AND",
        "NO",
        "EXPLAIN",
        "ANALYZE",
        "FORMAT",
        "DESCRIBE",
        "SHOW",
        "WARNINGS",
        "DO",
        "GET_LOCK",
        "NEXT",
        "VALUE",
        "NEXTVAL",
        "CREATE",
        "TEMPORARY",
        "TABLE",
        "TABLES",
        "DROP",
        "PREPARE",
        "EXECUTE",
        "DEALLOCATE",
        "USE",
        "HANDLER",
        "CALL",
        "JOIN",
        "lagless:primary",
        "lagless:backend=",
        "1",
        "0",
        "ON",
        "OFF",
        "é",
        "∑",
        "\u{0}",
        "\r",
        "\t",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn total_on_arbitrary_strings(s in any::<String>()) {
        check_total(&s)?;
    }

    #[test]
    fn total_on_arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..200)) {
        check_total(&String::from_utf8_lossy(&b))?;
    }

    #[test]
    fn total_on_sql_fragments(parts in prop::collection::vec(fragment(), 0..40), seps in prop::collection::vec(prop::sample::select(vec!["", " "]), 40)) {
        let s: String = parts.iter().zip(seps.iter()).map(|(p, s)| format!("{p}{s}")).collect();
        check_total(&s)?;
    }
}

#[test]
fn deep_nesting_is_fine() {
    for opts in all_opts() {
        let s = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(classify(&s, &opts).class, StatementClass::Read);
        let s = "EXPLAIN ANALYZE ".repeat(10_000) + "SELECT 1";
        let _ = classify(&s, &opts);
        let s = "SET STATEMENT a=1 FOR ".repeat(10_000) + "SELECT 1";
        assert_eq!(classify(&s, &opts).class, StatementClass::Unknown);
        let s = "(".repeat(100_000) + "SELECT 1";
        let _ = classify(&s, &opts);
        assert_eq!(tables(&s, &opts).count(), 0);
    }
}

#[test]
fn linear_time() {
    // 4 MB of tricky content classifies in well under a second even in debug builds.
    let unit = "INSERT INTO t VALUES ('a;b\\'c', \"/*\", `x`, @v := 1); -- c\n";
    let s = unit.repeat(4_000_000 / unit.len());
    let t = std::time::Instant::now();
    let c = classify(&s, &LexOptions::default());
    assert!(c.multi);
    assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
}
