//! `classify` (and walking `statements`/`tables`) never allocates.

use lagless_sql::{classify, statements, tables, LexOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SAMPLES: &[&str] = &[
    "SELECT c FROM sbtest1 WHERE id=4242",
    "/* lagless:backend=b1 */ SELECT * FROM a JOIN b ON a.id = b.id WHERE x IN (SELECT y FROM c) FOR UPDATE",
    "INSERT INTO t (a, b) VALUES ('x;y', \"z\") ON DUPLICATE KEY UPDATE a = VALUES(a)",
    "SET NAMES utf8mb4; SET autocommit=0; SELECT @a := 1; BEGIN; COMMIT AND CHAIN",
    "WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT * FROM c",
    "/*!40101 SET @OLD=@@X, X=0 */; USE `db`; PREPARE s FROM 'SELECT 1'; EXECUTE s USING @a",
    "SET STATEMENT max_statement_time=1 FOR EXPLAIN ANALYZE DELETE FROM t",
    "SELECT 'unterminated",
];

#[test]
fn classify_does_not_allocate() {
    let opts = LexOptions::default();
    // the counter works
    let before = ALLOCS.with(|c| c.get());
    drop(std::hint::black_box(String::from("x")));
    assert!(ALLOCS.with(|c| c.get()) > before);
    // warm up anything lazily initialised by the test harness on this thread
    let _ = classify("SELECT 1", &opts);
    for sql in SAMPLES {
        let before = ALLOCS.with(|c| c.get());
        let c = std::hint::black_box(classify(sql, &opts));
        let n_tables = tables(sql, &opts).count() + c.tables().count();
        let n_stmts = statements(sql, &opts).count();
        let after = ALLOCS.with(|c| c.get());
        assert_eq!(
            after, before,
            "{sql:?} allocated ({n_tables} tables, {n_stmts} statements)"
        );
    }
}
