//! Real-world statement corpus: every `tests/corpus/*.tsv` line is
//! `EXPECTED<TAB>SQL`, where EXPECTED is a class label (see `StatementClass`'s
//! `Display`) optionally followed by space-separated checks:
//!
//! * `uv` / `!uv`: uses_user_variables is true / false
//! * `pf`: primary_only_functions is true
//! * `n=N`: statement_count
//! * `hint=primary|replica|none|backend:NAME`
//! * `tables=a,db.b` (exact list, in order; `tables=` for none)
//! * `ac=0|1`: autocommit fact
//! * `sqlmode`: sets_sql_mode
//! * `fk=WORD`: first_keyword
//! * `mode=ansi|nbe|ansi+nbe`: lex options for this line
//!
//! In SQL, `\n` stands for a newline and `\t` for a tab. Lines starting with `#`
//! and blank lines are skipped. Every mismatch is reported, then the test fails.

use lagless_sql::{classify, LexOptions, RoutingHint};
use std::fs;
use std::path::Path;

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

fn check_line(file: &str, lineno: usize, line: &str, errors: &mut Vec<String>) -> bool {
    let Some((expected, sql_raw)) = line.split_once('\t') else {
        errors.push(format!("{file}:{lineno}: no TAB in line"));
        return false;
    };
    let sql = unescape(sql_raw);
    let mut parts = expected.split_whitespace();
    let class_label = parts.next().unwrap_or("");
    let checks: Vec<&str> = parts.collect();
    let mut opts = LexOptions::default();
    for c in &checks {
        if let Some(m) = c.strip_prefix("mode=") {
            opts.ansi_quotes = m.contains("ansi");
            opts.no_backslash_escapes = m.contains("nbe");
        }
    }
    let r = classify(&sql, &opts);
    let mut bad = Vec::new();
    let got = r.class.to_string();
    if got != class_label {
        bad.push(format!("class: expected {class_label}, got {got}"));
    }
    for c in &checks {
        let (key, val) = c.split_once('=').unwrap_or((c, ""));
        match key {
            "mode" => {}
            "uv" if !r.uses_user_variables => bad.push("expected uses_user_variables".into()),
            "!uv" if r.uses_user_variables => bad.push("expected !uses_user_variables".into()),
            "uv" | "!uv" => {}
            "pf" if !r.primary_only_functions => bad.push("expected primary_only_functions".into()),
            "pf" => {}
            "sqlmode" if !r.sets_sql_mode => bad.push("expected sets_sql_mode".into()),
            "sqlmode" => {}
            "n" => {
                if r.statement_count.to_string() != val {
                    bad.push(format!(
                        "statement_count: expected {val}, got {}",
                        r.statement_count
                    ));
                }
            }
            "ac" => {
                let want = match val {
                    "0" => Some(false),
                    "1" => Some(true),
                    _ => None,
                };
                if r.autocommit != want {
                    bad.push(format!(
                        "autocommit: expected {val}, got {:?}",
                        r.autocommit
                    ));
                }
            }
            "fk" => {
                if r.first_keyword != Some(val) {
                    bad.push(format!(
                        "first_keyword: expected {val}, got {:?}",
                        r.first_keyword
                    ));
                }
            }
            "hint" => {
                let got = match r.hint {
                    None => "none".to_string(),
                    Some(RoutingHint::Primary) => "primary".into(),
                    Some(RoutingHint::Replica) => "replica".into(),
                    Some(RoutingHint::Backend(n)) => format!("backend:{n}"),
                };
                if got != val {
                    bad.push(format!("hint: expected {val}, got {got}"));
                }
            }
            "tables" => {
                let got: Vec<String> = r.tables().map(|t| t.to_string()).collect();
                let want: Vec<&str> = if val.is_empty() {
                    vec![]
                } else {
                    val.split(',').collect()
                };
                if got != want {
                    bad.push(format!("tables: expected {want:?}, got {got:?}"));
                }
            }
            other => bad.push(format!("unknown check {other:?}")),
        }
    }
    if !bad.is_empty() {
        errors.push(format!(
            "{file}:{lineno}: {sql_raw}\n    {}",
            bad.join("\n    ")
        ));
    }
    true
}

#[test]
fn corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    files.sort();
    let mut errors = Vec::new();
    let mut total = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(path).expect("read corpus file");
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if check_line(&name, i + 1, line, &mut errors) {
                total += 1;
            }
        }
    }
    eprintln!(
        "corpus: {total} statements in {} files, {} mismatches",
        files.len(),
        errors.len()
    );
    assert!(total >= 300, "corpus too small: {total}");
    assert!(
        errors.is_empty(),
        "{} corpus mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}
