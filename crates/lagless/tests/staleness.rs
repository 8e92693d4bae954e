//! The stale-read checker, short: `lagless check-staleness` against a real sandbox with 1 s of
//! injected lag. The read-your-writes modes must show no stale read, and `eventual` must show
//! some (which proves the checker can see them). The full run is a benchmark (README).

use std::process::Command;

use lagless_e2e::Env;

#[test]
fn checker_sees_staleness_and_the_promising_modes_have_none() {
    let env = Env::start(std::path::Path::new(env!("CARGO_BIN_EXE_lagless"))).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lagless"))
        .arg("check-staleness")
        .args(["--proxy", &format!("127.0.0.1:{}", env.port())])
        .arg("--dir")
        .arg(env.sandbox.dir())
        .args([
            "--lag",
            "1",
            "--pairs",
            "15",
            "--writers",
            "2",
            "--readers",
            "1",
            "--json",
        ])
        .args([
            "--mode", "gtid", "--mode", "global", "--mode", "position", "--mode", "eventual",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    let stale = |mode: &str, variant: &str| -> u64 {
        let m = report["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mode"] == mode)
            .unwrap();
        let v = m["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["variant"] == variant)
            .unwrap();
        assert!(v["pairs"].as_u64().unwrap() > 0, "{mode}/{variant} ran");
        v["stale"].as_u64().unwrap()
    };
    for mode in ["gtid", "global", "position"] {
        assert_eq!(stale(mode, "same_connection"), 0, "{mode}");
        assert_eq!(stale(mode, "token"), 0, "{mode} with a token");
    }
    assert_eq!(stale("global", "new_connection"), 0);
    assert!(
        stale("eventual", "same_connection") > 0,
        "the checker saw no stale read under lag"
    );
}
