//! Allocations (and, under callgrind, instructions) per statement on the proxy's forwarding path.
//!
//! `cargo bench -p lagless-proxy --bench forwarding` runs a point select (1 row) and a 100-row
//! result set through the real engine (see `tests/support/forwarding.rs`) and prints the heap
//! allocations and bytes the session's thread made per statement after warm-up, and the wall
//! time per round trip (informational only: loopback, fake backend, noisy machine).
//!
//! Environment: `FWD_N` statements measured (default 20000), `FWD_WARMUP` (default 2000),
//! `FWD_ONLY=point|range|ps` one statement only (ps: the point select as a prepared statement,
//! COM_STMT_EXECUTE) (scripts/callgrind.sh runs it under callgrind,
//! collecting inside `measured_window` only).

#[path = "../tests/support/forwarding.rs"]
mod forwarding;

use forwarding::{Counting, Harness, Statement};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with fewer statements.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env("FWD_N", if quick { 200 } else { 20_000 });
    let warmup = env("FWD_WARMUP", if quick { 50 } else { 2_000 });
    let only = std::env::var("FWD_ONLY").unwrap_or_default();
    let mut h = Harness::start();
    let ps = h.prepare_point_select();
    for (name, stmt) in [
        ("point", Statement::point_select()),
        ("range", Statement::range_100()),
        ("ps", Statement::execute_point_select(ps)),
    ] {
        if !only.is_empty() && only != name {
            continue;
        }
        let t = std::time::Instant::now();
        let c = h.measure(&stmt, warmup, n);
        let elapsed = t.elapsed();
        println!(
            "forwarding/{name:<5} ({} bytes relayed): {:.3} allocations/statement, {:.1} bytes/statement, {:.1} us/round trip (wall, incl. warm-up)",
            stmt.expected.len(),
            c.allocs as f64 / n as f64,
            c.bytes as f64 / n as f64,
            elapsed.as_secs_f64() * 1e6 / (n + warmup) as f64,
        );
    }
}
