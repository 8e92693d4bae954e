//! Faults and lifecycle through the real binary: a killed backend connection, a killed
//! primary, killed replicas, graceful shutdown with a statement in flight, the connection
//! limit, bad config, and the demo's start/stop contract. Each test has its own sandbox and
//! proxy.
//!
//! The replica faults run under a continuous write and read workload and print a
//! `FAULT-RESULT {json}` line (see `lagless_e2e::faults` and `tests/failover.rs`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{client_error, insert_load};
use lagless_e2e::faults::{create_table, ids_on, FaultClock, FaultResult, Load, LoadReport};
use lagless_e2e::{free_port, rt, Env, EnvOptions};
use mysql_async::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_lagless");

fn start(opts: EnvOptions) -> Env {
    Env::start_with(std::path::Path::new(BIN), &opts).expect("sandbox and proxy start")
}

fn server_error_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// A writer inserting into `app.{table}` in autocommit and a reader reading it on four
/// sessions in turn (their reads go to the replicas), both through the proxy.
struct Workload {
    clock: FaultClock,
    writer: Load,
    reader: Load,
}

impl Workload {
    fn start(env: &Env, table: &str) -> Workload {
        create_table(&env.sandbox, table).unwrap();
        let writer = insert_load("writer", env.url(), table, 0);
        let (url, select) = (env.url(), format!("SELECT COUNT(*) FROM {table}"));
        let reader = Load::spawn("reader", 0, move || {
            let rt = rt();
            let mut sessions = Vec::new();
            for _ in 0..4 {
                sessions.push(rt.block_on(mysql_async::Conn::from_url(url.as_str()))?);
            }
            Ok(move |id: u64| {
                let c = &mut sessions[id as usize % 4];
                rt.block_on(c.query_drop(select.as_str()))
                    .map_err(client_error)
            })
        });
        writer.wait_acked(100, Duration::from_secs(20)).unwrap();
        reader.wait_acked(100, Duration::from_secs(20)).unwrap();
        Workload {
            clock: FaultClock::default(),
            writer,
            reader,
        }
    }

    /// Lets both run on a little after the fault, stops them, checks that every acknowledged
    /// write is on the primary and that the client saw no error; prints the fault's line.
    fn finish(self, env: &Env, table: &str, fault: &str) {
        let (w, r) = (&self.writer, &self.reader);
        w.wait_acked(w.acked() + 200, Duration::from_secs(10))
            .unwrap();
        r.wait_acked(r.acked() + 200, Duration::from_secs(10))
            .unwrap();
        let (writes, reads): (LoadReport, LoadReport) = (self.writer.stop(), self.reader.stop());
        let present = ids_on(env.sandbox.primary(), table).unwrap();
        let lost = writes.lost(&present);
        let (w, r) = (
            writes.phase(&self.clock, fault),
            reads.phase(&self.clock, fault),
        );
        FaultResult::new(fault, false, &w, writes.acked().len(), lost.len())
            .with("reads", reads.statements())
            .with("read_errors", serde_json::json!(r.errors))
            .with("slowest_read_ms", lagless_e2e::faults::ms(r.slowest))
            .print();
        assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
        assert_eq!(w.error_count(), 0, "write errors: {:?}", w.messages);
        assert_eq!(r.error_count(), 0, "read errors: {:?}", r.messages);
    }
}

#[test]
fn killed_backend_connection_gives_an_error_then_the_session_recovers() {
    let env = start(EnvOptions::default());
    rt().block_on(async {
        let mut victim = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let mut bystander = mysql_async::Conn::from_url(env.url()).await.unwrap();
        // A connection killed while idle in the pool is noticed before use: no error.
        let pooled_id: u64 = victim
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        env.sandbox
            .primary()
            .sql(&format!("KILL CONNECTION {pooled_id}"))
            .unwrap();
        let again: u64 = victim
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(again, pooled_id, "a fresh backend connection");
        // A user variable keeps the session on its connection: killing that one is an error.
        victim.query_drop("SET @bound = 1").await.unwrap();
        let backend_id: u64 = victim
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        env.sandbox
            .primary()
            .sql(&format!("KILL CONNECTION {backend_id}"))
            .unwrap();
        // CONNECTION_ID() is primary-only state: it runs on the killed connection.
        let err = victim
            .query_drop("SELECT CONNECTION_ID()")
            .await
            .expect_err("the backend connection is gone");
        assert_eq!(server_error_code(&err), Some(9002), "{err:?}");
        // Same client connection, next statement: a fresh backend connection.
        let v: Option<i32> = victim
            .query_first("/* lagless:primary */ SELECT 2")
            .await
            .unwrap();
        assert_eq!(v, Some(2));
        let new_id: u64 = victim
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(new_id, backend_id);
        let v: Option<i32> = bystander.query_first("SELECT 3").await.unwrap();
        assert_eq!(v, Some(3), "other sessions are not affected");
    });
}

#[test]
fn killed_primary_fails_fast_and_the_proxy_recovers_when_it_returns() {
    let env = start(EnvOptions::default());
    let primary = env.sandbox.primary();
    rt().block_on(async {
        let mut busy = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let sleeper = tokio::spawn(async move {
            let started = Instant::now();
            let r = busy
                .query_drop("/* lagless:primary */ SELECT SLEEP(20)")
                .await;
            (r, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        primary.kill().unwrap();
        let (r, took) = sleeper.await.unwrap();
        let err = r.expect_err("statement in flight on a killed primary fails");
        assert_eq!(server_error_code(&err), Some(9002), "{err:?}");
        assert!(took < Duration::from_secs(5), "error after {took:?}");
        // A new client still connects and reads from the replicas; a write fails promptly
        // with an error packet instead of hanging.
        let started = Instant::now();
        let mut reader = mysql_async::Conn::from_url(env.url())
            .await
            .expect("replicas still serve");
        let sid: Option<u32> = reader.query_first("SELECT @@server_id").await.unwrap();
        assert!(matches!(sid, Some(2 | 3)), "{sid:?}");
        let err = reader
            .query_drop("CREATE TABLE IF NOT EXISTS during_outage (a INT)")
            .await
            .expect_err("no primary");
        assert!(
            matches!(server_error_code(&err), Some(9001 | 9002)),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    });
    primary.restart().unwrap();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url())
            .await
            .expect("served again");
        let v: Option<i32> = c.query_first("SELECT 4").await.unwrap();
        assert_eq!(v, Some(4));
    });
}

/// Runs `sql` on a connection of its own and returns once the statement is (about 200 ms)
/// under way; the handle gives its first value.
fn in_flight(
    url: String,
    sql: &'static str,
) -> std::thread::JoinHandle<Result<Option<String>, mysql_async::Error>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        rt().block_on(async {
            let mut c = mysql_async::Conn::from_url(url).await.unwrap();
            tx.send(()).unwrap();
            c.query_first(sql).await
        })
    });
    rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    client
}

/// SIGTERM, and how long the proxy took to exit (cleanly).
fn stop_timed(env: &mut Env, limit: Duration) -> Duration {
    let start = std::time::Instant::now();
    let status = env.proxy.terminate(limit).unwrap();
    assert!(status.success(), "clean exit: {status}");
    start.elapsed()
}

#[test]
fn sigterm_lets_the_statement_in_flight_finish() {
    let mut env = start(EnvOptions::default());
    let port = env.port();
    let client = in_flight(env.url(), "SELECT CONCAT(SLEEP(1), 'done')");
    let pid = nix::unistd::Pid::from_raw(env.proxy.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no new connections while draining"
    );
    assert_eq!(
        client.join().unwrap().unwrap().as_deref(),
        Some("0done"),
        "in-flight statement completed"
    );
    let status = env.proxy.terminate(Duration::from_secs(5)).unwrap();
    assert!(status.success(), "clean exit: {status}");
}

/// A statement still running when the grace period ends is cut off: the proxy exits and the
/// client gets an error, not a hang.
#[test]
fn sigterm_closes_a_long_statement_after_the_grace_period() {
    let mut env = start(EnvOptions {
        shutdown_grace_ms: 500,
        ..EnvOptions::default()
    });
    let client = in_flight(env.url(), "SELECT SLEEP(20)");
    let took = stop_timed(&mut env, Duration::from_secs(15));
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM (grace 0.5 s)"
    );
    assert!(
        client.join().unwrap().is_err(),
        "the cut statement got an error"
    );
}

/// Idle sessions end at once on SIGTERM: the grace period is for statements in flight, and
/// here it is long enough that a session waiting it out would show.
#[test]
fn sigterm_closes_idle_sessions_at_once() {
    let mut env = start(EnvOptions {
        shutdown_grace_ms: 30_000,
        ..EnvOptions::default()
    });
    let url = env.url();
    let runtime = rt();
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut c = runtime
            .block_on(mysql_async::Conn::from_url(url.clone()))
            .unwrap();
        let one: Option<i64> = runtime.block_on(c.query_first("SELECT 1")).unwrap();
        assert_eq!(one, Some(1));
        idle.push(c);
    }
    let took = stop_timed(&mut env, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(10),
        "idle sessions held the proxy for {took:?} (grace 30 s)"
    );
    for mut c in idle {
        let r: Result<Option<i64>, _> = runtime.block_on(c.query_first("SELECT 1"));
        assert!(r.is_err(), "an idle session outlived the proxy");
    }
}

#[test]
fn connection_limit_refuses_with_1040() {
    let env = start(EnvOptions {
        listener_extra: "max_connections = 2".into(),
        ..EnvOptions::default()
    });
    rt().block_on(async {
        let a = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let _b = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let err = mysql_async::Conn::from_url(env.url())
            .await
            .expect_err("over the limit");
        assert_eq!(server_error_code(&err), Some(1040), "{err:?}");
        a.disconnect().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match mysql_async::Conn::from_url(env.url()).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    assert_eq!(server_error_code(&e), Some(1040));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("a slot should free up: {e:?}"),
            }
        }
    });
}

#[test]
fn bad_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../lagless.example.toml"
    ))
    .unwrap();
    for (from, to, key) in [
        (
            "weight = 1 ",
            "weight = 0 ",
            "clusters[0].servers[0].weight",
        ),
        (
            "local_infile = false",
            "local_infile = false\nlocal_infil = true",
            "local_infil",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, example.replacen(from, to, 1)).unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn demo_serves_the_default_user_and_stops_everything_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox_dir = dir.path().join("sb");
    let port = free_port().unwrap();
    let base = lagless_sandbox::free_base_port(3).unwrap();
    let mut demo = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(&sandbox_dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--base-port",
            &base.to_string(),
            "--admin",
            &format!("127.0.0.1:{}", free_port().unwrap()),
        ])
        .arg("--socket")
        .arg(dir.path().join("demo.sock"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "demo did not start");
        assert!(demo.try_wait().unwrap().is_none(), "demo exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out =
        lagless_e2e::mariadb_cli(port, "app", "lagless", "SELECT DATABASE(), @@server_id > 1")
            .unwrap();
    // The read ran on a replica (server ids 2 and 3).
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "app\t1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `--socket`: the same user over the Unix socket, Lagless on the servers' sockets.
    let over_socket = lagless_e2e::mariadb_cli_socket(
        &dir.path().join("demo.sock"),
        "app",
        "lagless",
        "SELECT USER(), @@server_id > 1",
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&over_socket.stdout),
        "app@localhost\t1\n",
        "{}",
        String::from_utf8_lossy(&over_socket.stderr)
    );
    let status = Command::new(BIN)
        .args(["sandbox", "status", "--json", "--dir"])
        .arg(&sandbox_dir)
        .output()
        .unwrap();
    assert!(status.status.success());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let servers = json["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    let pids: Vec<i32> = servers
        .iter()
        .map(|s| s["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(servers[0]["role"], "primary");
    assert!(servers
        .iter()
        .all(|s| s["alive"] == true && s["port"].as_u64().is_some()));
    assert!(json["users"]["app"]["password"] == "lagless", "{json}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = demo.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "demo did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    assert!(!dir.path().join("demo.sock").exists(), "socket file left");
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "server {pid} still running: {state}"
        );
    }
}

#[test]
fn a_dead_replica_is_skipped_and_reads_are_retried_without_client_errors() {
    let env = start(EnvOptions::default());
    let load = Workload::start(&env, "rk1");
    rt().block_on(async {
        // Sessions stuck to each replica.
        let mut sessions = Vec::new();
        for _ in 0..12 {
            let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
            let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
            sessions.push((c, sid));
        }
        assert!(sessions.iter().any(|(_, s)| *s == 2) && sessions.iter().any(|(_, s)| *s == 3));
        load.clock.mark("kill_replica");
        env.sandbox.replica(1).kill().unwrap(); // server_id 2
        for (c, was) in &mut sessions {
            for _ in 0..3 {
                let sid: u32 = c
                    .query_first("SELECT @@server_id")
                    .await
                    .expect("no client-visible error")
                    .unwrap();
                assert_ne!(sid, 2, "a read reached the dead replica");
                if *was == 3 {
                    assert_eq!(sid, 3, "sessions on the live replica stay there");
                }
            }
        }
        // New sessions avoid it too.
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
        assert_ne!(sid, 2);
    });
    load.finish(&env, "rk1", "kill_replica");
}

#[test]
fn rules_from_the_config_route_by_table_and_class() {
    let env = start(EnvOptions {
        extra: "[[rules]]\nname = \"audit reads on the primary\"\ntable = \"audit_*\"\nclass = \"read\"\ntarget = \"primary\"\n\n\
                [[rules]]\nname = \"reports on replica2\"\ntable_regex = \"^report_\"\ntarget = \"backend:replica2\"\n"
            .into(),
        ..EnvOptions::default()
    });
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE audit_log (a INT)")
            .await
            .unwrap();
        c.query_drop("CREATE TABLE report_daily (a INT)")
            .await
            .unwrap();
        c.query_drop("INSERT INTO report_daily VALUES (1)")
            .await
            .unwrap();
        // Let replication settle so the routed reads find the tables.
        env.sandbox
            .wait_caught_up(1, Duration::from_secs(10))
            .unwrap();
        env.sandbox
            .wait_caught_up(2, Duration::from_secs(10))
            .unwrap();
        let (_, sid): (Option<i32>, u32) = c
            .query_first("SELECT MAX(a), @@server_id FROM audit_log")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sid, 1, "rule: audit reads on the primary");
        for _ in 0..5 {
            let (_, sid): (Option<i32>, u32) = c
                .query_first("SELECT MAX(a), @@server_id FROM report_daily")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(sid, 3, "rule: report tables on replica2");
        }
        let e: Vec<(String, String, String, String)> = c
            .query("SHOW LAGLESS EXPLAIN SELECT * FROM audit_log")
            .await
            .unwrap();
        assert!(e[0].3.contains("audit reads on the primary"), "{e:?}");
    });
}

#[test]
fn a_drained_replica_gets_no_reads_until_it_is_put_back() {
    let env = start(EnvOptions::default());
    let admin = |path: &str| lagless_e2e::admin_request(env.admin_port, "POST", path);
    rt().block_on(async {
        let mut sessions = Vec::new();
        for _ in 0..12 {
            let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
            let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
            sessions.push((c, sid));
        }
        assert!(
            sessions.iter().any(|(_, s)| *s == 2),
            "a session reads from replica1"
        );
        assert_eq!(admin("/drain?server=replica1").0, 200);
        assert_eq!(
            admin("/drain?server=primary").0,
            409,
            "the primary cannot be drained"
        );
        assert_eq!(admin("/drain?server=nobody").0, 400);
        for (c, _) in &mut sessions {
            let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
            assert_eq!(
                sid, 3,
                "sessions move off the drained replica at their next statement"
            );
        }
        // Put back once the monitor sees it caught up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while admin("/undrain?server=replica1").0 != 200 {
            assert!(Instant::now() < deadline, "replica1 was never put back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
            seen.insert(
                c.query_first::<u32, _>("SELECT @@server_id")
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(
            seen.contains(&2),
            "new sessions read from replica1 again: {seen:?}"
        );
    });
}

#[test]
fn both_replicas_killed_reads_go_on_from_the_primary_without_errors() {
    let env = start(EnvOptions::default());
    let load = Workload::start(&env, "rk2");
    rt().block_on(async {
        let mut sessions = Vec::new();
        for _ in 0..6 {
            let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
            let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
            assert_ne!(sid, 1);
            sessions.push(c);
        }
        load.clock.mark("kill_both_replicas");
        env.sandbox.replica(1).kill().unwrap();
        env.sandbox.replica(2).kill().unwrap();
        for c in &mut sessions {
            for _ in 0..3 {
                let sid: u32 = c
                    .query_first("SELECT @@server_id")
                    .await
                    .expect("no client-visible error")
                    .unwrap();
                assert_eq!(sid, 1, "the primary serves reads when no replica is left");
            }
        }
        let mut fresh = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let sid: u32 = fresh
            .query_first("SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sid, 1);
    });
    load.finish(&env, "rk2", "kill_both_replicas");
}

/// libmariadb (the mariadb CLI, sysbench, mysqlclient) reads an ERR packet with a client-side
/// code (2006, 2013) as "2027 Received malformed packet": Lagless's own errors use codes from
/// 9000, which such clients show as they are.
#[test]
fn the_mariadb_cli_sees_lagless_errors_with_their_own_code() {
    let env = start(EnvOptions::default());
    let primary = env.sandbox.primary();
    let port = env.port();
    let cli = std::thread::spawn(move || {
        lagless_e2e::mariadb_cli(
            port,
            "app",
            "lagless",
            // LAST_INSERT_ID() keeps it on the primary (the CLI strips comments, hints too).
            "SELECT SLEEP(5) AS lagless_cli_sleep, LAST_INSERT_ID();",
        )
        .unwrap()
    });
    // Kill the backend connection running the sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let id = primary
            .sql("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%lagless_cli_sleep%' AND INFO NOT LIKE '%PROCESSLIST%'")
            .unwrap();
        if !id.trim().is_empty() {
            break id.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the sleep never reached the primary"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    primary.sql(&format!("KILL CONNECTION {id}")).unwrap();
    let out = cli.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ERROR 9002"), "{stderr}");
    assert!(!stderr.contains("2027"), "{stderr}");
}

/// A replica paused (SIGSTOP) while a read runs on it: once the monitor finds it unreachable
/// the read is sent elsewhere, before any byte of it reached the client. No client error.
#[test]
fn a_read_in_flight_on_a_paused_replica_is_retried_elsewhere() {
    let env = start(EnvOptions::failover());
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let sticky: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
        assert_ne!(sticky, 1, "reads go to a replica");
        let replica = env
            .sandbox
            .replicas()
            .iter()
            .find(|s| s.server_id() == sticky)
            .unwrap();
        let read = tokio::spawn(async move {
            let started = Instant::now();
            let r: Result<Option<(u32, u32)>, _> =
                c.query_first("SELECT SLEEP(1), @@server_id").await;
            (r, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        replica.pause().unwrap();
        let (r, took) = read.await.unwrap();
        replica.resume().unwrap();
        let (_, ran_on) = r.expect("no client-visible error").expect("a row");
        assert_ne!(ran_on, sticky, "the read was retried on another server");
        assert!(took < Duration::from_secs(5), "answered after {took:?}");
        println!("read in flight on a paused replica: answered by server {ran_on} after {took:?}");
    });
}
