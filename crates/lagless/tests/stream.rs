//! A 1 GiB result set streams through the proxy with bounded memory. Alone in its test binary
//! so that the proxy's peak RSS reflects only this result.

use std::process::{Command, Stdio};

use lagless_e2e::Env;

/// Peak resident set size of a process, in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn one_gib_result_streams_with_bounded_proxy_memory() {
    let env = Env::start(std::path::Path::new(env!("CARGO_BIN_EXE_lagless"))).unwrap();
    let pid = env.proxy.child.id();
    // Warm up: one session and a small result, so the baseline includes the runtime's buffers.
    let out = env.cli("app", "lagless", "SELECT 1").unwrap();
    assert!(out.status.success());
    let before = peak_rss_kib(pid);
    // 1024 rows of 1 MiB each; the CLI reads them unbuffered (--quick) and counts the bytes.
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P{} -uapp -plagless --quick --batch \
             --skip-column-names -e \"SELECT REPEAT('x', 1048576) FROM seq_1_to_1024\" app | wc -c",
            env.port()
        ))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        bytes,
        1024 * (1_048_576 + 1),
        "every row arrived (with its newline)"
    );
    let after = peak_rss_kib(pid);
    let growth_mib = after.saturating_sub(before) as f64 / 1024.0;
    println!("proxy peak RSS before {before} KiB, after {after} KiB: +{growth_mib:.1} MiB for a 1 GiB result");
    assert!(
        growth_mib < 16.0,
        "proxy memory grew by {growth_mib:.1} MiB while relaying 1 GiB"
    );
}
