//! The per-statement path of a multiplexed session forwarding result sets makes no heap
//! allocation once warm (issue #6): a point select, a 100-row result set and the point select
//! as a prepared statement (COM_STMT_EXECUTE) through the real engine, with a fake backend (see
//! `support/forwarding.rs`). Counts, not timings.

#[path = "support/forwarding.rs"]
mod forwarding;

use forwarding::{Counting, Harness, Statement};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn forwarding_result_sets_does_not_allocate() {
    let mut h = Harness::start();
    let ps = h.prepare_point_select();
    for (name, stmt) in [
        ("point select", Statement::point_select()),
        ("100-row result", Statement::range_100()),
        ("prepared point select", Statement::execute_point_select(ps)),
    ] {
        let c = h.measure(&stmt, 50, 300);
        assert_eq!(
            c.allocs, 0,
            "{name}: {} allocations ({} bytes) in 300 statements",
            c.allocs, c.bytes
        );
    }
}

#[test]
fn the_counter_sees_the_engine_thread() {
    // A statement the engine handles with allocations of its own (an intercepted SHOW LAGLESS
    // STATUS builds its result set): the count must not be 0, or the test above proves nothing.
    let mut h = Harness::start();
    let stmt = Statement::query_any("SHOW LAGLESS STATUS");
    let c = h.measure(&stmt, 1, 5);
    assert!(
        c.allocs > 0,
        "no allocation counted for SHOW LAGLESS STATUS"
    );
}
