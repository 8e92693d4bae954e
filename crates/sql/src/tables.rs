//! Lazy, allocation-free extraction of the tables a text names.
//!
//! [`tables`] (or [`crate::Classification::tables`]) returns an iterator that
//! re-lexes the text on demand, so `classify()` stays fast for callers that never
//! ask. Names come after `FROM`, `JOIN`, `INTO`, `UPDATE`, `TABLE`/`TABLES`,
//! `REFERENCES`, `INSERT`/`REPLACE` (without `INTO`), `DESCRIBE`, `HANDLER`,
//! `TRUNCATE`, `RENAME ... TO`, `CREATE ... LIKE`, and in comma lists after those
//! (`FROM a x, b y`, `LOCK TABLES a READ, b WRITE`, `DROP TABLE a, b`).
//!
//! Best effort, for routing decisions (temporary-table pins, per-table lag), not a
//! parser: names come unquoted and as written (doubled quote characters kept, no
//! case folding), in order of appearance, possibly repeated; CTE names show up like
//! tables; `FROM` inside function calls (`EXTRACT(YEAR FROM d)`, `TRIM(... FROM s)`)
//! is ignored; `GRANT`/`REVOKE` name no tables; in `SHOW` only `SHOW CREATE TABLE t`
//! and `SHOW COLUMNS|FIELDS|INDEX|KEYS FROM t` do.

use crate::keywords::{kw, Kw};
use crate::lexer::{LexOptions, Lexer, Token, TokenKind};
use core::fmt;

/// A table name, optionally qualified by its schema, borrowing from the query text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableRef<'a> {
    /// `db` in `db.tbl`.
    pub schema: Option<&'a str>,
    /// `tbl`.
    pub name: &'a str,
}

impl fmt::Display for TableRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.schema {
            write!(f, "{s}.")?;
        }
        f.write_str(self.name)
    }
}

/// The tables named by `sql`, extracted lazily (see the module docs).
pub fn tables<'a>(sql: &'a str, opts: &LexOptions) -> Tables<'a> {
    Tables::new(sql, *opts)
}

/// Iterator over [`TableRef`]s; see [`tables`].
#[derive(Clone, Debug)]
pub struct Tables<'a> {
    lx: Lexer<'a>,
    buf: [Option<Token<'a>>; 2],
    nbuf: usize,
    expect: bool,
    at_start: bool,
    stmt_kw: Kw,
    prev_kw: Kw,
    prev_dot: bool,
    /// bit d-1 set: parenthesis level d is an expression (function arguments, column list)
    expr_bits: u64,
    depth: u32,
    show_cols: bool,
    show_from_done: bool,
}

/// Words that cannot be a table name where one is expected.
fn is_stop(k: Kw) -> bool {
    matches!(
        k,
        Kw::Select
            | Kw::With
            | Kw::Values
            | Kw::Value
            | Kw::Set
            | Kw::Where
            | Kw::Like
            | Kw::From
            | Kw::In
            | Kw::On
            | Kw::Using
            | Kw::Group
            | Kw::Order
            | Kw::Limit
            | Kw::Having
            | Kw::Union
            | Kw::Except
            | Kw::Intersect
            | Kw::For
            | Kw::Lock
            | Kw::Join
            | Kw::StraightJoin
            | Kw::Left
            | Kw::Right
            | Kw::Inner
            | Kw::Cross
            | Kw::Natural
            | Kw::As
            | Kw::Window
            | Kw::Dual
            | Kw::Outfile
            | Kw::Dumpfile
            | Kw::Format
            | Kw::Analyze
            | Kw::Extended
            | Kw::Partitions
            | Kw::Insert
            | Kw::Update
            | Kw::Delete
            | Kw::Replace
            | Kw::Returning
            | Kw::Procedure
            | Kw::Force
            | Kw::Ignore
    )
}

impl<'a> Tables<'a> {
    pub(crate) fn new(sql: &'a str, opts: LexOptions) -> Self {
        Tables {
            lx: Lexer::new(sql, opts),
            buf: [None, None],
            nbuf: 0,
            expect: false,
            at_start: true,
            stmt_kw: Kw::None,
            prev_kw: Kw::None,
            prev_dot: false,
            expr_bits: 0,
            depth: 0,
            show_cols: false,
            show_from_done: false,
        }
    }

    fn reset_statement(&mut self) {
        self.expect = false;
        self.at_start = true;
        self.stmt_kw = Kw::None;
        self.prev_kw = Kw::None;
        self.prev_dot = false;
        self.expr_bits = 0;
        self.depth = 0;
        self.show_cols = false;
        self.show_from_done = false;
    }

    fn peek(&mut self, n: usize) -> Option<Token<'a>> {
        while self.nbuf <= n {
            self.buf[self.nbuf] = self.lx.next_token();
            self.nbuf += 1;
        }
        self.buf[n].filter(|t| t.kind != TokenKind::Semicolon)
    }

    fn take(&mut self) -> Option<Token<'a>> {
        if self.nbuf > 0 {
            let t = self.buf[0];
            self.buf[0] = self.buf[1];
            self.buf[1] = None;
            self.nbuf -= 1;
            t
        } else {
            self.lx.next_token()
        }
    }

    fn peek_is(&mut self, n: usize, c: u8) -> bool {
        self.peek(n).is_some_and(|t| t.is_symbol(c))
    }

    fn in_expr(&self) -> bool {
        self.depth > 0 && (self.depth > 64 || self.expr_bits & (1u64 << (self.depth - 1)) != 0)
    }

    fn note(&mut self, t: &Token<'a>, k: Kw) {
        self.prev_kw = k;
        self.prev_dot = t.is_symbol(b'.');
    }

    /// After a table name: is another one coming (`, x`, `alias, x`, `AS alias, x`)?
    fn list_continues(&mut self) -> bool {
        let Some(p) = self.peek(0) else {
            return false;
        };
        if p.is_symbol(b',') {
            self.take();
            return true;
        }
        let pk = if p.kind == TokenKind::Word {
            kw(p.text)
        } else {
            Kw::None
        };
        if pk == Kw::As {
            self.take();
            if self.peek(0).is_some_and(|t| t.is_ident_like()) {
                self.take();
            }
            if self.peek_is(0, b',') {
                self.take();
                return true;
            }
            return false;
        }
        if p.is_ident_like() && !is_stop(pk) && self.peek_is(1, b',') {
            self.take();
            self.take();
            return true;
        }
        false
    }
}

impl<'a> Iterator for Tables<'a> {
    type Item = TableRef<'a>;

    fn next(&mut self) -> Option<TableRef<'a>> {
        loop {
            let t = self.take()?;
            if t.kind == TokenKind::Semicolon {
                self.reset_statement();
                continue;
            }
            let k = if t.kind == TokenKind::Word {
                kw(t.text)
            } else {
                Kw::None
            };
            let at_start = self.at_start;
            if at_start {
                self.at_start = false;
                self.stmt_kw = k;
            }
            if t.is_symbol(b'(') {
                let query = self.expect
                    || self.peek_is(0, b'(')
                    || self.peek(0).is_some_and(|p| {
                        p.kind == TokenKind::Word
                            && matches!(kw(p.text), Kw::Select | Kw::With | Kw::Values | Kw::Table)
                    });
                self.depth = self.depth.saturating_add(1);
                if self.depth <= 64 {
                    let bit = 1u64 << (self.depth - 1);
                    if query {
                        self.expr_bits &= !bit;
                    } else {
                        self.expr_bits |= bit;
                    }
                }
                self.note(&t, k);
                continue;
            }
            if t.is_symbol(b')') {
                self.depth = self.depth.saturating_sub(1);
                self.expect = false;
                self.note(&t, k);
                continue;
            }
            if matches!(self.stmt_kw, Kw::Grant | Kw::Revoke) {
                continue;
            }
            if self.expect {
                if matches!(
                    k,
                    Kw::LowPriority
                        | Kw::Delayed
                        | Kw::HighPriority
                        | Kw::Ignore
                        | Kw::Quick
                        | Kw::If
                        | Kw::Not
                        | Kw::Exists
                        | Kw::Lateral
                        | Kw::Only
                        | Kw::Into
                        | Kw::Table
                        | Kw::Temporary
                ) {
                    self.note(&t, k);
                    continue;
                }
                if t.is_ident_like() && !is_stop(k) {
                    let mut r = TableRef {
                        schema: None,
                        name: t.text,
                    };
                    if self.peek_is(0, b'.') && self.peek(1).is_some_and(|n| n.is_ident_like()) {
                        self.take();
                        let n = self.take()?;
                        r = TableRef {
                            schema: Some(t.text),
                            name: n.text,
                        };
                    }
                    self.prev_kw = Kw::None;
                    self.prev_dot = false;
                    self.expect = self.list_continues();
                    return Some(r);
                }
                self.expect = false;
            }
            let show = self.stmt_kw == Kw::Show;
            let trigger = match k {
                // SHOW COLUMNS|FIELDS|INDEX|KEYS FROM t [FROM db]
                Kw::From | Kw::In if show => {
                    let first = self.show_cols && !self.show_from_done;
                    self.show_from_done |= first;
                    first
                }
                Kw::From => !self.in_expr(),
                Kw::Join | Kw::StraightJoin | Kw::Into | Kw::References => true,
                Kw::Update => !matches!(self.prev_kw, Kw::For | Kw::Key | Kw::On) && !self.prev_dot,
                Kw::Table | Kw::Tables => !show || self.prev_kw == Kw::Create,
                Kw::Insert
                | Kw::Replace
                | Kw::Describe
                | Kw::Desc
                | Kw::Explain
                | Kw::Handler
                | Kw::Truncate => at_start,
                Kw::To => self.stmt_kw == Kw::Rename,
                Kw::Like => self.stmt_kw == Kw::Create,
                Kw::Columns | Kw::Fields | Kw::Index | Kw::Indexes | Kw::Keys => {
                    self.show_cols |= show;
                    false
                }
                _ => false,
            };
            self.expect |= trigger;
            self.note(&t, k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        tables(sql, &LexOptions::default())
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn selects() {
        assert_eq!(names("SELECT c FROM sbtest1 WHERE id=1"), ["sbtest1"]);
        assert_eq!(
            names("SELECT * FROM `db`.`t` AS x, b y, c WHERE 1"),
            ["db.t", "b", "c"]
        );
        assert_eq!(
            names("SELECT * FROM a LEFT JOIN b ON a.id=b.id INNER JOIN db.c USING (id)"),
            ["a", "b", "db.c"]
        );
        assert_eq!(
            names("SELECT EXTRACT(YEAR FROM d), TRIM(BOTH 'x' FROM s) FROM t"),
            ["t"]
        );
        assert_eq!(
            names(
                "SELECT * FROM (SELECT id FROM inner_t) AS d JOIN t2 WHERE x IN (SELECT y FROM t3)"
            ),
            ["inner_t", "t2", "t3"]
        );
        assert_eq!(names("SELECT * FROM (t1, t2)"), ["t1", "t2"]);
        assert_eq!(names("SELECT 1 FROM DUAL"), Vec::<String>::new());
        assert_eq!(names("SELECT a INTO @x FROM t"), ["t"]);
        assert_eq!(names("SELECT * FROM t INTO OUTFILE '/tmp/x'"), ["t"]);
        assert_eq!(names("SELECT * FROM t FOR UPDATE"), ["t"]);
        assert_eq!(names("SELECT * FROM t1; SELECT * FROM t2"), ["t1", "t2"]);
    }

    #[test]
    fn writes() {
        assert_eq!(
            names("INSERT INTO t (a, b) VALUES (1, 2) ON DUPLICATE KEY UPDATE a = 1"),
            ["t"]
        );
        assert_eq!(
            names("INSERT IGNORE INTO db.t SELECT * FROM s"),
            ["db.t", "s"]
        );
        assert_eq!(names("INSERT t VALUES (1)"), ["t"]);
        assert_eq!(names("REPLACE INTO t VALUES (1)"), ["t"]);
        assert_eq!(names("UPDATE LOW_PRIORITY t1, t2 SET a=1"), ["t1", "t2"]);
        assert_eq!(
            names("DELETE FROM t WHERE id IN (SELECT id FROM u)"),
            ["t", "u"]
        );
        assert_eq!(
            names("DELETE t1 FROM t1 JOIN t2 ON t1.a=t2.a"),
            ["t1", "t2"]
        );
        assert_eq!(names("CREATE TEMPORARY TABLE IF NOT EXISTS tmp (id int, FOREIGN KEY (id) REFERENCES p(id))"), ["tmp", "p"]);
        assert_eq!(names("DROP TABLE IF EXISTS a, b"), ["a", "b"]);
        assert_eq!(names("TRUNCATE TABLE t"), ["t"]);
        assert_eq!(names("TRUNCATE t"), ["t"]);
        assert_eq!(names("RENAME TABLE a TO b, c TO d"), ["a", "b", "c", "d"]);
        assert_eq!(names("LOCK TABLES t1 READ, t2 AS x WRITE"), ["t1", "t2"]);
        assert_eq!(names("LOAD DATA INFILE 'f' INTO TABLE t"), ["t"]);
        assert_eq!(names("CREATE TABLE t LIKE s"), ["t", "s"]);
        assert_eq!(names("WITH x AS (SELECT 1) UPDATE t SET a = 1"), ["t"]);
        assert_eq!(names("GRANT SELECT ON db.t TO u"), Vec::<String>::new());
        assert_eq!(names("REVOKE ALL ON *.* FROM u"), Vec::<String>::new());
    }

    #[test]
    fn meta() {
        assert_eq!(names("DESCRIBE tmp"), ["tmp"]);
        assert_eq!(names("EXPLAIN SELECT * FROM t"), ["t"]);
        assert_eq!(names("SHOW FULL COLUMNS FROM `t` FROM db"), ["t"]);
        assert_eq!(names("SHOW TABLES FROM db"), Vec::<String>::new());
        assert_eq!(names("SHOW TABLE STATUS LIKE 't'"), Vec::<String>::new());
        assert_eq!(names("SHOW CREATE TABLE t"), ["t"]);
        assert_eq!(names("HANDLER t OPEN"), ["t"]);
    }

    #[test]
    fn ansi_quotes() {
        let o = LexOptions {
            ansi_quotes: true,
            ..Default::default()
        };
        let v: Vec<_> = tables(r#"SELECT * FROM "s"."t""#, &o).collect();
        assert_eq!(
            v,
            [TableRef {
                schema: Some("s"),
                name: "t"
            }]
        );
    }
}
