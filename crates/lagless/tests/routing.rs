//! Read/write splitting end to end: where each statement ran is proven by `@@server_id` in the
//! same statement (primary 1, replicas 2 and 3) and by the proxy's own counters.

use std::collections::HashSet;

use lagless_e2e::{rt, shared_env, Env};
use mysql_async::prelude::*;

fn env() -> &'static Env {
    shared_env(env!("CARGO_BIN_EXE_lagless"))
}

async fn conn() -> mysql_async::Conn {
    mysql_async::Conn::from_url(env().url())
        .await
        .expect("connects through lagless")
}

async fn server_id(c: &mut mysql_async::Conn, sql: &str) -> u32 {
    c.query_first(sql).await.unwrap().expect("a row")
}

#[test]
fn reads_go_to_one_replica_per_session_and_writes_to_the_primary() {
    rt().block_on(async {
        let mut c = conn().await;
        let first = server_id(&mut c, "SELECT @@server_id").await;
        assert!(first == 2 || first == 3, "a read ran on server {first}");
        for _ in 0..20 {
            assert_eq!(
                server_id(&mut c, "SELECT @@server_id").await,
                first,
                "sticky replica"
            );
        }
        c.query_drop("CREATE TABLE IF NOT EXISTS rw_t (id INT PRIMARY KEY, sid INT)")
            .await
            .unwrap();
        // The write records where it ran.
        c.query_drop("REPLACE INTO rw_t VALUES (1, @@server_id)")
            .await
            .unwrap();
        let (sid,): (u32,) = c
            .query_first("SELECT sid FROM rw_t WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sid, 1, "the write ran on the primary");
        // Many sessions spread over both replicas.
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let mut s = conn().await;
            seen.insert(server_id(&mut s, "SELECT @@server_id").await);
            s.disconnect().await.unwrap();
        }
        assert_eq!(
            seen,
            HashSet::from([2, 3]),
            "random balance uses both replicas"
        );
    });
}

#[test]
fn a_session_reads_its_own_writes() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop("CREATE TABLE IF NOT EXISTS ryw (id INT PRIMARY KEY, v INT)")
            .await
            .unwrap();
        for i in 0..200 {
            c.exec_drop("REPLACE INTO ryw VALUES (1, ?)", (i,))
                .await
                .unwrap();
            let v: Option<i32> = c
                .query_first("SELECT v FROM ryw WHERE id = 1")
                .await
                .unwrap();
            assert_eq!(v, Some(i), "read after write {i} was stale");
        }
    });
}

#[test]
fn transactions_stay_on_their_server() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop("BEGIN").await.unwrap();
        assert_eq!(
            server_id(&mut c, "SELECT @@server_id").await,
            1,
            "read-write transaction on the primary"
        );
        c.query_drop("COMMIT").await.unwrap();
        c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
        let ro = server_id(&mut c, "SELECT @@server_id").await;
        assert_ne!(ro, 1, "READ ONLY transaction on a replica");
        assert_eq!(
            server_id(&mut c, "SELECT @@server_id").await,
            ro,
            "the whole transaction on it"
        );
        c.query_drop("COMMIT").await.unwrap();
        // autocommit off: every statement opens a transaction on the primary.
        c.query_drop("SET autocommit = 0").await.unwrap();
        assert_eq!(server_id(&mut c, "SELECT @@server_id").await, 1);
        c.query_drop("COMMIT").await.unwrap();
        c.query_drop("SET autocommit = 1").await.unwrap();
        assert_ne!(server_id(&mut c, "SELECT @@server_id").await, 1);
        // A read-write BEGIN inside a READ ONLY transaction moves to the primary.
        c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        assert_eq!(server_id(&mut c, "SELECT @@server_id").await, 1);
        c.query_drop("COMMIT").await.unwrap();
    });
}

#[test]
fn autocommit_off_survives_a_read_only_transaction_on_a_replica() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop("SET autocommit = 0").await.unwrap();
        c.query_drop("START TRANSACTION READ ONLY").await.unwrap();
        let sid = server_id(&mut c, "SELECT @@server_id").await;
        assert_ne!(sid, 1, "READ ONLY transactions run on a replica");
        c.query_drop("COMMIT").await.unwrap();
        // The replica's status flags after COMMIT must tell the session's autocommit, not
        // the replica connection's: before 2026-11-22 they said on, and the next read went
        // to a replica, where @@autocommit was 1.
        let ac: u32 = c.query_first("SELECT @@autocommit").await.unwrap().unwrap();
        assert_eq!(ac, 0);
        let rows: Vec<(String, String)> = c.query("SHOW LAGLESS STATUS").await.unwrap();
        assert!(rows.contains(&("session_autocommit".into(), "false".into())));
    });
}

#[test]
fn session_state_follows_the_session_to_every_server() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop("SET time_zone = '+05:30', sql_mode = 'ANSI_QUOTES', SESSION group_concat_max_len = 4321")
            .await
            .unwrap();
        let row: (String, String, u64, u32) = c
            .query_first("SELECT @@time_zone, @@sql_mode, @@group_concat_max_len, @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.0, "+05:30");
        assert_eq!(row.1, "ANSI_QUOTES");
        assert_eq!(row.2, 4321);
        assert_ne!(row.3, 1, "the read ran on a replica that got the session's variables");
        c.query_drop("SET NAMES latin1").await.unwrap();
        let cs: (String, u32) = c.query_first("SELECT @@character_set_client, @@server_id").await.unwrap().unwrap();
        assert_eq!(cs.0, "latin1");
        // USE follows too.
        c.query_drop("USE sbtest").await.unwrap();
        let db: (String, u32) = c.query_first("SELECT DATABASE(), @@server_id").await.unwrap().unwrap();
        assert_eq!(db.0, "sbtest");
        assert_ne!(db.1, 1);
    });
}

#[test]
fn user_variables_temporary_tables_and_locks_use_the_primary() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop("SET @answer = 42").await.unwrap();
        let v: (i32, u32) = c
            .query_first("SELECT @answer, @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, (42, 1), "user variables live on the primary connection");
        c.query_drop("CREATE TEMPORARY TABLE tmp_rows (a INT)")
            .await
            .unwrap();
        c.query_drop("INSERT INTO tmp_rows VALUES (1), (2)")
            .await
            .unwrap();
        let n: (u32, u32) = c
            .query_first("SELECT COUNT(*), @@server_id FROM tmp_rows")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, (2, 1));
        let d: Vec<mysql_async::Row> = c.query("DESCRIBE tmp_rows").await.unwrap();
        assert_eq!(
            d.len(),
            1,
            "DESCRIBE of a temporary table runs where it exists"
        );
        assert_eq!(
            server_id(&mut c, "SELECT @@server_id").await,
            1,
            "pinned while the temporary table exists"
        );
        c.query_drop("DROP TEMPORARY TABLE tmp_rows").await.unwrap();
        assert_ne!(server_id(&mut c, "SELECT @@server_id").await, 1, "unpinned");
        c.query_drop("SELECT GET_LOCK('lagless-test', 1)")
            .await
            .unwrap();
        assert_eq!(
            server_id(&mut c, "SELECT @@server_id").await,
            1,
            "named lock pins"
        );
        c.query_drop("SELECT RELEASE_ALL_LOCKS()").await.unwrap();
        assert_ne!(server_id(&mut c, "SELECT @@server_id").await, 1);
        let status: Vec<(String, String)> = c.query("SHOW LAGLESS STATUS").await.unwrap();
        assert!(
            status
                .iter()
                .any(|(k, v)| k == "session_pinned" && v == "no"),
            "{status:?}"
        );
    });
}

#[test]
fn prepared_statement_runs_1000_times_on_a_replica_and_moves_into_a_transaction() {
    rt().block_on(async {
        let mut c = conn().await;
        c.query_drop("CREATE TABLE IF NOT EXISTS ps_rt (id INT PRIMARY KEY, v VARCHAR(10))")
            .await
            .unwrap();
        c.query_drop("REPLACE INTO ps_rt VALUES (1, 'one')")
            .await
            .unwrap();
        // Let the replicas apply the write, so that read-your-writes lets them serve.
        let wait = std::time::Duration::from_secs(10);
        env().sandbox.wait_caught_up(1, wait).unwrap();
        env().sandbox.wait_caught_up(2, wait).unwrap();
        let stmt = c
            .prep("SELECT v, @@server_id FROM ps_rt WHERE id = ?")
            .await
            .unwrap();
        let mut servers = HashSet::new();
        for _ in 0..1000 {
            let row: (String, u32) = c.exec_first(&stmt, (1,)).await.unwrap().unwrap();
            assert_eq!(row.0, "one");
            servers.insert(row.1);
        }
        assert_eq!(servers.len(), 1);
        assert!(
            !servers.contains(&1),
            "executions ran on a replica: {servers:?}"
        );
        // The same statement inside a transaction runs on the primary (prepared there lazily).
        c.query_drop("BEGIN").await.unwrap();
        let row: (String, u32) = c.exec_first(&stmt, (1,)).await.unwrap().unwrap();
        assert_eq!(row.1, 1);
        c.query_drop("COMMIT").await.unwrap();
        c.close(stmt).await.unwrap();
        // LAST_INSERT_ID is the primary's.
        c.query_drop("CREATE TABLE IF NOT EXISTS ai_t (id INT AUTO_INCREMENT PRIMARY KEY, x INT)")
            .await
            .unwrap();
        c.query_drop("INSERT INTO ai_t (x) VALUES (1), (2)")
            .await
            .unwrap();
        assert_eq!(c.affected_rows(), 2);
        let id = c.last_insert_id().unwrap();
        let again: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
        assert_eq!(again, Some(id));
    });
}

#[test]
fn hints_and_explain() {
    rt().block_on(async {
        let mut c = conn().await;
        assert_eq!(
            server_id(&mut c, "/* lagless:primary */ SELECT @@server_id").await,
            1
        );
        assert_eq!(
            server_id(&mut c, "/* lagless:backend=replica2 */ SELECT @@server_id").await,
            3
        );
        let e: Vec<(String, String, String, String)> = c
            .query("SHOW LAGLESS EXPLAIN SELECT * FROM t FOR UPDATE")
            .await
            .unwrap();
        assert_eq!(e[0].0, "locking_read");
        assert_eq!(e[0].1, "primary");
        assert!(e[0].3.contains("locking read"), "{e:?}");
    });
}

#[test]
fn explain_cli_json_contract() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lagless"))
        .args(["explain", "--json", "UPDATE t SET a = 1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["class"], "write");
    assert_eq!(v["target"], "primary");
    assert!(v["reason"].as_str().unwrap().contains("write"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lagless"))
        .args(["explain", "--json", "--in-transaction", "SELECT 1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["class"].as_str(), v["target"].as_str()),
        (Some("read"), Some("primary"))
    );
}

#[test]
fn sysbench_read_write_splits_reads_onto_replicas_without_errors() {
    let sysbench = |args: &[&str]| {
        let mut all = vec![
            "--tables=1",
            "--table-size=1000",
            "--mysql-ignore-errors=none",
        ];
        all.extend_from_slice(args);
        lagless_e2e::sysbench(env().port(), &all)
    };
    let before = backend_counts();
    let prep = sysbench(&["prepare"]);
    assert!(
        prep.status.success(),
        "{}",
        String::from_utf8_lossy(&prep.stderr)
    );
    // Without --skip-trx every event is a BEGIN ... COMMIT transaction, whose reads rightly stay
    // on the primary; in autocommit the reads are spread over the replicas.
    let run = sysbench(&["--threads=1", "--time=5", "--skip-trx=on", "run"]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        text.contains("ignored errors:                      0"),
        "{text}"
    );
    let after = backend_counts();
    let delta = |name: &str, col: usize| after[name][col] - before.get(name).map_or(0, |v| v[col]);
    let replica_reads = delta("replica1", 0) + delta("replica2", 0);
    assert!(replica_reads > 1000, "reads on replicas: {replica_reads}");
    assert_eq!(
        delta("replica1", 1) + delta("replica2", 1),
        0,
        "no write reached a replica"
    );
    assert!(delta("primary", 1) > 100, "writes on the primary");
}

/// server name → [reads, writes] from SHOW LAGLESS BACKENDS.
fn backend_counts() -> std::collections::HashMap<String, [u64; 2]> {
    rt().block_on(async {
        let mut c = conn().await;
        let rows: Vec<mysql_async::Row> = c.query("SHOW LAGLESS BACKENDS").await.unwrap();
        rows.into_iter()
            .map(|r| {
                let name: String = r.get("server").unwrap();
                let reads: String = r.get("reads").unwrap();
                let writes: String = r.get("writes").unwrap();
                (name, [reads.parse().unwrap(), writes.parse().unwrap()])
            })
            .collect()
    })
}

fn admin_get(path: &str) -> (u16, serde_json::Value) {
    lagless_e2e::admin_request(env().admin_port, "GET", path)
}

#[test]
fn admin_interface_reports_backends_replication_and_explains() {
    let (status, backends) = admin_get("/backends");
    assert_eq!(status, 200);
    let servers = backends["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    assert!(servers.iter().all(|s| s["health"] == "up"), "{backends}");
    let (status, e) = admin_get("/explain?sql=SELECT%20*%20FROM%20t%20FOR%20UPDATE");
    assert_eq!(status, 200);
    assert_eq!(
        (e["class"].as_str(), e["target"].as_str()),
        (Some("locking_read"), Some("primary"))
    );
    // The monitor has reported within a few rounds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, r) = admin_get("/replication");
        let servers = r["servers"].as_array().cloned().unwrap_or_default();
        if servers.len() == 3 && servers.iter().filter(|s| s["role"] == "replica").count() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no monitor view: {r}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(admin_get("/nowhere").0, 404);
}
