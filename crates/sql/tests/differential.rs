//! Differential property test against `sqlparser` (MySQL dialect): random
//! SELECT/INSERT/UPDATE/DELETE statements with random identifiers, literals
//! (strings holding `;`, comment markers and escaped quotes) and comments in
//! the whitespace. Whenever sqlparser parses a statement, our class must agree
//! with the class derived from its AST; the table names we extract must be the
//! ones the generator put in, whatever sqlparser says.

use lagless_sql::{classify, LexOptions};
use proptest::prelude::*;
use sqlparser::ast::{Query, SetExpr, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// Words MySQL reserves (plus a few that change meaning in these positions), never
/// generated as unquoted identifiers.
const RESERVED: &[&str] = &[
    "select",
    "from",
    "where",
    "insert",
    "update",
    "delete",
    "replace",
    "into",
    "values",
    "value",
    "set",
    "for",
    "lock",
    "share",
    "in",
    "key",
    "on",
    "and",
    "or",
    "not",
    "null",
    "limit",
    "offset",
    "order",
    "by",
    "group",
    "having",
    "union",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "cross",
    "natural",
    "as",
    "is",
    "like",
    "between",
    "case",
    "when",
    "then",
    "else",
    "end",
    "exists",
    "table",
    "with",
    "default",
    "primary",
    "index",
    "unique",
    "dual",
    "asc",
    "desc",
    "distinct",
    "all",
    "true",
    "false",
    "interval",
    "div",
    "mod",
    "xor",
    "regexp",
    "rlike",
    "binary",
    "collate",
    "escape",
    "using",
    "straight_join",
    "window",
    "over",
    "partition",
    "do",
    "use",
    "show",
    "into",
    "next",
    "previous",
    "mode",
    "nowait",
    "skip",
    "locked",
    "of",
    "duplicate",
    "ignore",
    "low_priority",
    "quick",
    "high_priority",
    "delayed",
    "row",
    "rows",
    "range",
    "except",
    "intersect",
    "returning",
    "sql_calc_found_rows",
    "outfile",
    "dumpfile",
    "current_date",
    "current_time",
    "current_user",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "database",
    "schema",
    "if",
    "match",
    "against",
    "separator",
    "array",
    "format",
    "member",
];

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9_]{0,9}".prop_filter("reserved", |s| !RESERVED.contains(&s.as_str())),
        1 => "[a-z;'\" #/*-]{1,8}".prop_map(|s| format!("`{s}`")),
        1 => "[a-z]{1,4}".prop_map(|s| format!("`{s}``x`")),
    ]
}

/// An identifier and its unquoted form (what `tables()` reports).
fn ident_pair() -> impl Strategy<Value = (String, String)> {
    ident().prop_map(|s| {
        let bare = s
            .strip_prefix('`')
            .and_then(|x| x.strip_suffix('`'))
            .unwrap_or(&s)
            .to_string();
        (s, bare)
    })
}

fn table() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        3 => ident_pair(),
        1 => (ident_pair(), ident_pair()).prop_map(|((a, ab), (b, bb))| (format!("{a}.{b}"), format!("{ab}.{bb}"))),
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just(" "),
        1 => Just("\n"),
        1 => Just("\t "),
        1 => Just(" /* c; 'x\" -- */ "),
        1 => Just(" -- c; 'x /*\n"),
        1 => Just(" # c; \"y\n"),
        1 => Just(" /**/ "),
    ]
}

fn string_lit() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        prop::sample::select(vec![
            ";",
            "/*",
            "*/",
            "-- ",
            "#",
            "`",
            "\\'",
            "''",
            "\\\\",
            "FOR UPDATE",
            "; DELETE FROM t",
            "@x",
        ])
        .prop_map(str::to_string),
        "[a-z ]{1,5}",
    ];
    prop::collection::vec(frag, 0..6).prop_flat_map(|parts| {
        let single: String = parts.concat();
        // the same content in double quotes: the quote characters swap roles, fragment
        // by fragment (replacing in the joined text could match across fragments)
        let double: String = parts
            .iter()
            .map(|p| match p.as_str() {
                "\\'" => "\\\"",
                "''" => "\"\"",
                other => other,
            })
            .collect();
        prop_oneof![Just(format!("'{single}'")), Just(format!("\"{double}\""))]
    })
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u32..100000).prop_map(|n| n.to_string()),
        1 => (0u32..1000, 0u32..100).prop_map(|(a, b)| format!("{a}.{b}")),
        1 => Just("NULL".to_string()),
        4 => string_lit(),
    ]
}

fn column() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ident(),
        1 => (ident(), ident()).prop_map(|(a, b)| format!("{a}.{b}")),
    ]
}

fn condition() -> impl Strategy<Value = (String, Vec<String>)> {
    let simple = prop_oneof![
        (
            column(),
            prop_oneof![Just("="), Just("<"), Just(">="), Just("<>"), Just("!=")],
            literal()
        )
            .prop_map(|(c, op, l)| format!("{c} {op} {l}")),
        (column(), literal(), literal()).prop_map(|(c, a, b)| format!("{c} IN ({a}, {b})")),
        (column(), literal(), literal()).prop_map(|(c, a, b)| format!("{c} BETWEEN {a} AND {b}")),
        column().prop_map(|c| format!("{c} IS NULL")),
        (column(), string_lit()).prop_map(|(c, s)| format!("{c} LIKE {s}")),
    ];
    let sub = (column(), column(), table())
        .prop_map(|(c, c2, (t, tb))| (format!("{c} IN (SELECT {c2} FROM {t})"), vec![tb]));
    prop_oneof![
        4 => simple.clone().prop_map(|s| (s, vec![])),
        1 => (simple.clone(), prop_oneof![Just("AND"), Just("OR")], simple).prop_map(|(a, op, b)| (format!("{a} {op} {b}"), vec![])),
        1 => sub,
    ]
}

fn select_list() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("*".to_string()),
        3 => prop::collection::vec(
            prop_oneof![
                3 => column(),
                1 => (prop_oneof![Just("COUNT"), Just("SUM"), Just("LOWER"), Just("COALESCE")], column()).prop_map(|(f, c)| format!("{f}({c})")),
                1 => (literal(), ident()).prop_map(|(l, a)| format!("{l} AS {a}")),
            ],
            1..4,
        )
        .prop_map(|v| v.join(", ")),
    ]
}

/// (sql, tables the generator used)
fn select() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        (ws(), select_list(), ws(), table()),
        prop::option::of(ident()),
        prop::option::of(condition()),
        prop::option::of(column()),
        prop::option::of((1u32..1000, prop::option::of(0u32..1000))),
        prop::option::weighted(
            0.3,
            prop_oneof![
                Just("FOR UPDATE"),
                Just("FOR SHARE"),
                Just("FOR UPDATE NOWAIT"),
                Just("FOR UPDATE SKIP LOCKED"),
                Just("LOCK IN SHARE MODE")
            ],
        ),
        prop::option::weighted(0.05, ident()),
    )
        .prop_map(
            |((w1, cols, w2, (t, tb)), alias, cond, order, limit, lock, into)| {
                let mut s = format!("SELECT{w1}{cols}");
                if let Some(v) = into {
                    s += &format!(
                        " INTO @{}",
                        v.trim_matches('`')
                            .replace(['`', '\'', '"', ' ', ';', '#', '/', '*', '-'], "v")
                    );
                }
                s += &format!("{w2}FROM {t}");
                let mut tables = vec![tb];
                if let Some(a) = alias {
                    s += &format!(" {a}");
                }
                if let Some((c, sub)) = cond {
                    s += &format!(" WHERE {c}");
                    tables.extend(sub);
                }
                if let Some(o) = order {
                    s += &format!(" ORDER BY {o}");
                }
                if let Some((n, off)) = limit {
                    s += &format!(" LIMIT {n}");
                    if let Some(o) = off {
                        s += &format!(" OFFSET {o}");
                    }
                }
                if let Some(l) = lock {
                    s += &format!(" {l}");
                }
                (s, tables)
            },
        )
}

fn insert() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        ws(),
        table(),
        prop::collection::vec((column(), literal()), 1..4),
        prop::option::of((column(), literal())),
        any::<bool>(),
    )
        .prop_map(|(w, (t, tb), pairs, odku, two_rows)| {
            let cols: Vec<_> = pairs
                .iter()
                .map(|p| p.0.rsplit('.').next().unwrap_or(&p.0).to_string())
                .collect();
            let vals: Vec<_> = pairs.iter().map(|p| p.1.clone()).collect();
            let mut s = format!(
                "INSERT INTO{w}{t} ({}) VALUES ({})",
                cols.join(", "),
                vals.join(", ")
            );
            if two_rows {
                s += &format!(", ({})", vals.join(", "));
            }
            if let Some((c, l)) = odku {
                s += &format!(" ON DUPLICATE KEY UPDATE {c} = {l}");
            }
            (s, vec![tb])
        })
}

fn update() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        ws(),
        table(),
        prop::collection::vec((column(), literal()), 1..3),
        prop::option::of(condition()),
    )
        .prop_map(|(w, (t, tb), sets, cond)| {
            let sets: Vec<_> = sets.iter().map(|(c, l)| format!("{c} = {l}")).collect();
            let mut s = format!("UPDATE{w}{t} SET {}", sets.join(", "));
            let mut tables = vec![tb];
            if let Some((c, sub)) = cond {
                s += &format!(" WHERE {c}");
                tables.extend(sub);
            }
            (s, tables)
        })
}

fn delete() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        ws(),
        table(),
        prop::option::of(condition()),
        prop::option::of(1u32..100),
    )
        .prop_map(|(w, (t, tb), cond, limit)| {
            let mut s = format!("DELETE{w}FROM {t}");
            let mut tables = vec![tb];
            if let Some((c, sub)) = cond {
                s += &format!(" WHERE {c}");
                tables.extend(sub);
            }
            if let Some(n) = limit {
                s += &format!(" LIMIT {n}");
            }
            (s, tables)
        })
}

fn statement() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        prop_oneof![3 => select(), 1 => insert(), 1 => update(), 1 => delete()],
        prop_oneof![Just(""), Just("/* app=x */ "), Just("\n  ")],
        prop_oneof![Just(""), Just(";"), Just(" ;"), Just(" -- end\n")],
    )
        .prop_map(|((s, t), pre, post)| (format!("{pre}{s}{post}"), t))
}

fn query_has_locks(q: &Query) -> bool {
    !q.locks.is_empty() || set_expr_has_locks(&q.body)
}

fn set_expr_has_locks(e: &SetExpr) -> bool {
    match e {
        SetExpr::Query(q) => query_has_locks(q),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr_has_locks(left) || set_expr_has_locks(right)
        }
        _ => false,
    }
}

fn oracle(stmt: &Statement) -> Option<&'static str> {
    match stmt {
        Statement::Query(q) => Some(if query_has_locks(q) {
            "locking_read"
        } else if matches!(&*q.body, SetExpr::Select(s) if s.into.is_some()) {
            "read_primary"
        } else {
            "read"
        }),
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => Some("write"),
        _ => None,
    }
}

fn check(sql: &str, tables: &[String]) -> Result<(), TestCaseError> {
    let ours = classify(sql, &LexOptions::default());
    prop_assert_eq!(ours.statement_count, 1, "statement count of {:?}", sql);
    let got_tables: Vec<String> = ours.tables().map(|t| t.to_string()).collect();
    prop_assert_eq!(&got_tables[..], tables, "tables of {:?}", sql);
    if let Ok(parsed) = Parser::parse_sql(&MySqlDialect {}, sql) {
        prop_assert_eq!(parsed.len(), 1, "sqlparser statement count of {:?}", sql);
        if let Some(want) = oracle(&parsed[0]) {
            prop_assert_eq!(ours.class.to_string(), want, "class of {:?}", sql);
        }
    }
    Ok(())
}

/// sqlparser recurses deeply in debug builds: run on a thread with a big stack.
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

#[test]
fn agrees_with_sqlparser() {
    with_big_stack(|| {
        let config = ProptestConfig {
            cases: 600,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let mut runner = proptest::test_runner::TestRunner::new(config);
        if let Err(e) = runner.run(&statement(), |(sql, tables)| check(&sql, &tables)) {
            panic!("{e}");
        }
    });
}

/// How often sqlparser accepted the generated statements (so the test is not vacuous).
#[test]
fn sqlparser_accepts_most_generated_statements() {
    with_big_stack(parse_rate);
}

fn parse_rate() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strat = statement();
    let (mut parsed, mut agreed, total) = (0, 0, 300);
    for _ in 0..total {
        let (sql, _) = strat.new_tree(&mut runner).unwrap().current();
        if let Ok(p) = Parser::parse_sql(&MySqlDialect {}, &sql) {
            parsed += 1;
            if oracle(&p[0])
                .is_some_and(|w| classify(&sql, &LexOptions::default()).class.to_string() == w)
            {
                agreed += 1;
            }
        }
    }
    eprintln!("sqlparser parsed {parsed}/{total}; classes agreed on {agreed}");
    assert!(parsed * 2 > total, "sqlparser parsed only {parsed}/{total}");
    assert_eq!(parsed, agreed);
}
