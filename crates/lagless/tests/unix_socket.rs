//! Unix sockets on both sides: clients on Lagless's `[listener] socket`, Lagless on the
//! servers' sockets (`socket` per server), with the `mariadb` CLI and sysbench as clients.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lagless_e2e::{Env, EnvOptions};

fn start(listener_extra: &str) -> (Env, PathBuf, tempfile::TempDir) {
    start_with(EnvOptions::default(), listener_extra)
}

fn start_with(base: EnvOptions, listener_extra: &str) -> (Env, PathBuf, tempfile::TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("lagless-sock-")
        .tempdir()
        .unwrap();
    let socket = dir.path().join("lagless.sock");
    let opts = EnvOptions {
        listener_extra: format!("socket = \"{}\"\n{listener_extra}", socket.display()),
        backend_sockets: true,
        ..base
    };
    let env = Env::start_with(Path::new(env!("CARGO_BIN_EXE_lagless")), &opts)
        .expect("sandbox and proxy start");
    (env, socket, dir)
}

/// `mariadb --batch` on the Unix socket `socket`, as `app`.
fn cli(socket: &Path, password: &str, sql: &str) -> Output {
    lagless_e2e::mariadb_cli_socket(socket, "app", password, sql).unwrap()
}

fn rows(socket: &Path, sql: &str) -> Vec<String> {
    let out = cli(socket, "lagless", sql);
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Reads, writes and read-your-writes over the client socket, every server reached over its
/// own socket: each server sees Lagless's connections (the pool's and the monitor's) from
/// `localhost`, which over TCP would be `127.0.0.1`.
#[test]
fn clients_and_servers_on_unix_sockets() {
    let (mut env, socket, _dir) = start("");
    let replica_ports: Vec<String> = (env.sandbox.replicas().iter())
        .map(|r| r.port().to_string())
        .collect();

    // A read: on a replica, through the replica's socket (USER() is `app@127.0.0.1` over TCP).
    let read = rows(&socket, "SELECT @@port, USER();");
    let (port, user) = read[0].split_once('\t').unwrap();
    assert!(replica_ports.iter().any(|p| p == port), "read on {port}");
    assert_eq!(user, "app@localhost", "the replica was dialled over TCP");

    // A write records the host of the primary's connection; the same session reads it back
    // (read-your-writes, with GTIDs learned over the socket).
    let back = rows(
        &socket,
        "CREATE TABLE IF NOT EXISTS sock_t (id INT PRIMARY KEY, port INT, host VARCHAR(64));\
         INSERT INTO sock_t VALUES (1, @@port, USER());\
         SELECT port, host FROM sock_t WHERE id = 1;",
    );
    let primary_port = env.sandbox.primary().port().to_string();
    assert_eq!(back, vec![format!("{primary_port}\tapp@localhost")]);

    // The monitor's probes and binlog streams: all over the sockets too.
    let monitor = rows(
        &socket,
        "SELECT COUNT(*), SUM(host NOT LIKE 'localhost%') FROM information_schema.processlist \
         WHERE user = 'lagless';",
    );
    let (n, over_tcp) = monitor[0].split_once('\t').unwrap();
    assert!(n.parse::<u32>().unwrap() >= 1, "no monitor connection: {n}");
    assert_eq!(over_tcp, "0");

    // A refused login names the client as a MariaDB server would for a socket client.
    let denied = cli(&socket, "wrong", "SELECT 1;");
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("'app'@'localhost'"), "{err}");

    // The TCP listener serves alongside.
    let tcp = env.cli("app", "lagless", "SELECT id FROM sock_t;").unwrap();
    assert_eq!(String::from_utf8_lossy(&tcp.stdout).trim(), "1");

    // The admin API shows where clients may connect.
    let (code, status) = lagless_e2e::admin_request(env.admin_port, "GET", "/status");
    assert_eq!(code, 200);
    assert_eq!(
        status["config"]["listener_socket"].as_str(),
        Some(socket.to_str().unwrap())
    );

    // Stopping removes the socket file.
    assert!(socket.exists());
    let status = env.proxy.terminate(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "socket file left behind");
}

/// sysbench on the client socket with one runtime per worker thread (accepted sockets move to
/// another runtime): prepared and text statements, and sysbench exits without an error (it
/// fails at the first error outside its ignored deadlocks).
#[test]
fn sysbench_over_the_socket_on_thread_per_core_workers() {
    let (env, socket, _dir) = start("runtime = \"thread_per_core\"\nworker_threads = 2");
    let sysbench = |args: &[&str]| {
        let out = Command::new("sysbench")
            .args(["oltp_read_write", "--db-driver=mysql"])
            .arg(format!("--mysql-socket={}", socket.display()))
            .args([
                "--mysql-user=app",
                "--mysql-password=lagless",
                "--mysql-db=sbtest",
                "--tables=2",
                "--table-size=500",
            ])
            .args(args)
            .output()
            .expect("sysbench runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    sysbench(&["prepare"]);
    for mode in ["auto", "disable"] {
        let report = sysbench(&[
            "--threads=4",
            "--time=2",
            &format!("--db-ps-mode={mode}"),
            "run",
        ]);
        let queries = report
            .lines()
            .find(|l| l.trim_start().starts_with("queries:"))
            .unwrap();
        let n: u64 = queries.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(n > 100, "{mode}: {queries}");
    }
    drop(env);
}

/// The monitor watches the servers over their sockets and fails over when the primary's
/// mariadbd is killed (its socket then refuses connections); writes from a socket client go on
/// on the promoted replica.
#[test]
fn a_kill_9_of_the_primary_fails_over_with_the_servers_on_sockets() {
    let (env, socket, _dir) = start_with(EnvOptions::failover(), "");
    let old = env.sandbox.primary().port().to_string();
    rows(
        &socket,
        "CREATE TABLE fo_sock (id INT PRIMARY KEY); INSERT INTO fo_sock VALUES (1);",
    );
    // Replication is asynchronous: kill only once both replicas hold row 1, else the promoted
    // one may lack it (the loss the failover tests measure, not what this test is about).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for r in env.sandbox.replicas() {
        while r
            .sql("SELECT COUNT(*) FROM app.fo_sock")
            .ok()
            .as_deref()
            .map(str::trim)
            != Some("1")
        {
            assert!(std::time::Instant::now() < deadline, "row 1 not replicated");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    env.sandbox.primary().kill().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !cli(&socket, "lagless", "INSERT INTO fo_sock VALUES (2);")
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no write 15 s after the kill: {}",
            env.proxy.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let now = rows(
        &socket,
        "/* lagless:primary */ SELECT @@port, USER(), COUNT(*) FROM fo_sock;",
    );
    let cols: Vec<&str> = now[0].split('\t').collect();
    assert_ne!(cols[0], old, "writes still on the killed primary's port");
    assert_eq!(
        cols[1], "app@localhost",
        "the new primary was dialled over TCP"
    );
    assert_eq!(cols[2], "2");
}

/// Every PyMySQL and SQLAlchemy check of `tests/python/clients.py` over the client socket, where
/// PyMySQL sends a caching_sha2_password in clear on its first login (a local peer).
#[test]
fn python_clients_over_the_socket() {
    let (_env, socket, _dir) = start("");
    // A port nobody listens on: a check that fell back to TCP would fail.
    let args = [
        "--port".into(),
        "1".into(),
        format!("--socket={}", socket.display()),
    ];
    let stdout = lagless_e2e::python_checks("clients.py", &args);
    assert!(
        stdout.contains("ok   caching_sha2_full_then_fast"),
        "{stdout}"
    );
}
