//! Backend connection pooling and multiplexing end to end: sessions share server connections
//! without seeing each other's state, and sessions with connection-bound state keep theirs.

use std::time::{Duration, Instant};

use lagless_e2e::{lagless_status as status, rt, Env, EnvOptions};
use mysql_async::prelude::*;
use mysql_async::Conn;

fn start(replicas: usize, pool: &str) -> Env {
    start_with_listener(replicas, pool, "")
}

fn start_with_listener(replicas: usize, pool: &str, listener: &str) -> Env {
    let opts = EnvOptions {
        replicas,
        listener_extra: listener.into(),
        extra: format!("[pool]\n{pool}\n"),
        ..EnvOptions::default()
    };
    Env::start_with(std::path::Path::new(env!("CARGO_BIN_EXE_lagless")), &opts)
        .expect("sandbox and proxy start")
}

async fn conn(env: &Env) -> Conn {
    Conn::from_url(env.url()).await.expect("connects")
}

async fn one<T: FromValue + Send + 'static>(c: &mut Conn, sql: &str) -> T {
    c.query_first(sql).await.unwrap().expect("a row")
}

fn error_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

/// (pool_idle, pool_open) of every server, from SHOW LAGLESS BACKENDS.
async fn pool_counts(c: &mut Conn) -> Vec<(String, u64, Option<u64>)> {
    let rows: Vec<mysql_async::Row> = c.query("SHOW LAGLESS BACKENDS").await.unwrap();
    rows.into_iter()
        .map(|r| {
            let name: String = r.get("server").unwrap();
            let idle: String = r.get("pool_idle").unwrap();
            let open: Option<String> = r.get("pool_open").unwrap();
            (
                name,
                idle.parse().unwrap(),
                open.map(|o| o.parse().unwrap()),
            )
        })
        .collect()
}

/// One server connection (a cap of 1) shared by two sessions, one after the other: each sees
/// only its own session variables, character set and last insert id.
#[test]
fn sessions_share_one_server_connection_without_sharing_state() {
    let env = start(
        0,
        "max_per_server = 1\nwait_timeout_ms = 2000\nhold_ms = 500",
    );
    rt().block_on(async {
        let mut a = conn(&env).await;
        let mut b = conn(&env).await;
        let id_a: u64 = one(&mut a, "SELECT CONNECTION_ID()").await;
        let id_b: u64 = one(&mut b, "SELECT CONNECTION_ID()").await;
        assert_eq!(id_a, id_b, "both sessions ran on the one server connection");

        a.query_drop("SET time_zone = '+05:00', sql_mode = 'ANSI_QUOTES'")
            .await
            .unwrap();
        let tz: String = one(&mut b, "SELECT @@session.time_zone").await;
        assert_eq!(tz, "SYSTEM", "b does not see a's time zone");
        let mode: String = one(&mut b, "SELECT @@session.sql_mode").await;
        assert!(!mode.contains("ANSI_QUOTES"), "b's sql_mode is {mode}");
        let tz: String = one(&mut a, "SELECT @@session.time_zone").await;
        assert_eq!(tz, "+05:00", "a keeps its time zone");
        let mode: String = one(&mut a, "SELECT @@session.sql_mode").await;
        assert_eq!(mode, "ANSI_QUOTES");
        let id: u64 = one(&mut b, "SELECT CONNECTION_ID()").await;
        assert_eq!(id, id_a, "still the same server connection");

        // A character set change cannot be undone with DEFAULT: that connection is not shared.
        a.query_drop("SET NAMES latin1").await.unwrap();
        let cs: String = one(&mut b, "SELECT @@character_set_client").await;
        assert_eq!(cs, "utf8mb4", "b keeps its own character set");
        let cs: String = one(&mut a, "SELECT @@character_set_client").await;
        assert_eq!(cs, "latin1");

        // SET NAMES ... COLLATE: the server's session tracking leaves the collation out, so
        // Lagless takes it from the statement and replays it after the character set (which
        // would reset it to the default); a session that did not ask for it gets its own back.
        let b_collation: String = one(&mut b, "SELECT @@collation_connection").await;
        a.query_drop("SET NAMES latin1 COLLATE latin1_bin")
            .await
            .unwrap();
        let co: String = one(&mut b, "SELECT @@collation_connection").await;
        assert_eq!(co, b_collation, "b keeps its own collation");
        let co: String = one(&mut a, "SELECT @@collation_connection").await;
        assert_eq!(
            co, "latin1_bin",
            "a's collation replayed after its character set"
        );
        a.query_drop("SET NAMES latin1").await.unwrap();
        let co: String = one(&mut b, "SELECT @@collation_connection").await;
        assert_eq!(co, b_collation);
        let co: String = one(&mut a, "SELECT @@collation_connection").await;
        assert_eq!(
            co, "latin1_swedish_ci",
            "SET NAMES without COLLATE: the default again"
        );

        // LAST_INSERT_ID() after a write runs on the write's connection, even when another
        // session is waiting for it.
        a.query_drop(
            "CREATE TABLE IF NOT EXISTS pool_ai (id INT AUTO_INCREMENT PRIMARY KEY, who CHAR(1))",
        )
        .await
        .unwrap();
        b.query_drop("INSERT INTO pool_ai (who) VALUES ('b')")
            .await
            .unwrap();
        let b_id = b.last_insert_id().unwrap();
        // b keeps the connection for its next statement, or until idle for hold_ms.
        let started = Instant::now();
        a.query_drop("INSERT INTO pool_ai (who) VALUES ('a')")
            .await
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "a waited {:?} for b's held connection",
            started.elapsed()
        );
        let a_id = a.last_insert_id().unwrap();
        assert!(a_id > b_id);
        let waiting = tokio::spawn(async move {
            b.query_drop("INSERT INTO pool_ai (who) VALUES ('b')")
                .await
                .unwrap();
            b
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let seen: u64 = one(&mut a, "SELECT LAST_INSERT_ID()").await;
        assert_eq!(seen, a_id, "a's LAST_INSERT_ID(), not b's");
        let mut b = waiting.await.unwrap();
        let b_id = b.last_insert_id().unwrap();
        assert!(b_id > a_id);
        let seen: u64 = one(&mut b, "SELECT LAST_INSERT_ID()").await;
        assert_eq!(seen, b_id);
    });
}

/// User variables and transactions live on a connection: the session keeps it, others wait
/// for it (and get 1040 when the wait is too long); closing the session frees it.
#[test]
fn connection_bound_sessions_keep_their_connection() {
    let env = start(0, "max_per_server = 1\nwait_timeout_ms = 700");
    rt().block_on(async {
        let mut a = conn(&env).await;
        let mut b = conn(&env).await;
        a.query_drop("CREATE TABLE IF NOT EXISTS pool_t (id INT PRIMARY KEY)")
            .await
            .unwrap();
        a.query_drop("DELETE FROM pool_t").await.unwrap();

        // A transaction: b waits until a commits.
        a.query_drop("BEGIN").await.unwrap();
        a.query_drop("INSERT INTO pool_t VALUES (1)").await.unwrap();
        let started = Instant::now();
        let waiting = tokio::spawn(async move {
            let n: u64 = b
                .query_first("SELECT COUNT(*) FROM pool_t")
                .await
                .unwrap()
                .unwrap();
            (b, n, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.query_drop("COMMIT").await.unwrap();
        let (mut b, n, waited) = waiting.await.unwrap();
        assert_eq!(n, 1, "b ran after the commit");
        assert!(waited >= Duration::from_millis(250), "b waited {waited:?}");

        // A user variable binds a's session to its connection until a resets it.
        a.query_drop("SET @mine = 42").await.unwrap();
        let started = Instant::now();
        let err = b.query_drop("SELECT 1").await.unwrap_err();
        assert_eq!(error_code(&err), Some(1040), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(600));
        let v: u64 = one(&mut a, "SELECT @mine").await;
        assert_eq!(v, 42);
        // COM_RESET_CONNECTION ends it: the variable is gone and b gets the connection.
        a.reset().await.unwrap();
        let x: u64 = one(&mut b, "SELECT 1").await;
        assert_eq!(x, 1);
        let v: Option<u64> = one(&mut a, "SELECT @mine").await;
        assert_eq!(v, None, "the reset dropped the variable");

        // A session closed while bound gives nothing back: its state goes with the connection.
        a.query_drop("CREATE TEMPORARY TABLE pool_tmp (x INT)")
            .await
            .unwrap();
        a.disconnect().await.unwrap();
        let mut c = conn(&env).await;
        let err = c.query_drop("SELECT * FROM pool_tmp").await.unwrap_err();
        assert_eq!(
            error_code(&err),
            Some(1146),
            "no temporary table leaked: {err}"
        );
    });
}

/// Many clients at once through a few connections per server: no errors, the cap holds, and
/// connections are logged in once and then reused.
#[test]
fn many_clients_share_a_capped_pool() {
    let env = start(2, "max_per_server = 4");
    rt().block_on(async {
        // One shared runtime: one count, of every session.
        let (mut a, _b) = (conn(&env).await, conn(&env).await);
        assert_eq!(status(&mut a, "worker_sessions").await, "2");
        assert_eq!(status(&mut a, "session_worker").await, "0");
    });
    many_clients_through_a_pool_of_4(&env);
}

/// The same with one runtime per worker thread: each of the 2 workers has its own connections,
/// 2 per server, and serves its share of the sessions; SIGTERM still drains and stops them.
#[test]
fn thread_per_core_workers_share_a_capped_pool() {
    let mut env = start_with_listener(
        2,
        "max_per_server = 4",
        "runtime = \"thread_per_core\"\nworker_threads = 2",
    );
    rt().block_on(async {
        // Two sessions at once go to the two workers, and the status shows it.
        let (mut a, mut b) = (conn(&env).await, conn(&env).await);
        let (wa, wb) = (
            status(&mut a, "session_worker").await,
            status(&mut b, "session_worker").await,
        );
        assert_ne!(wa, wb, "both sessions on worker {wa}");
        assert_eq!(status(&mut a, "worker_sessions").await, "1,1");
        drop((a, b));
    });
    let pid = env.proxy.child.id();
    let before = worker_cpu_ticks(pid);
    assert_eq!(before.len(), 2, "two worker threads: {before:?}");
    many_clients_through_a_pool_of_4(&env);
    let after = worker_cpu_ticks(pid);
    for (tid, ticks) in &after {
        let busy = ticks - before.get(tid).copied().unwrap_or(0);
        // 4,800 statements: each worker ran its share (a tick is 10 ms of CPU).
        assert!(busy >= 3, "worker {tid} used {busy} ticks: {after:?}");
    }
    let status = env
        .proxy
        .terminate(Duration::from_secs(10))
        .expect("stops on SIGTERM");
    assert!(status.success(), "{status}");
}

/// CPU time (user + system, in clock ticks) of each `lagless-worker` thread of process `pid`.
fn worker_cpu_ticks(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut ticks = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != "lagless-worker" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // Fields after the command name, which ends with ')': utime and stime are 14 and 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let t: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks.insert(dir.file_name().unwrap().to_string_lossy().into_owned(), t);
    }
    ticks
}

fn many_clients_through_a_pool_of_4(env: &Env) {
    rt().block_on(async {
        let mut setup = seeded(
            env,
            &[
                "CREATE TABLE IF NOT EXISTS pool_many (id INT PRIMARY KEY, v INT)",
                "REPLACE INTO pool_many VALUES (1, 7)",
            ],
            ("SELECT COUNT(*) FROM app.pool_many WHERE v = 7", "1"),
        )
        .await;
        let logins_before = logins(&mut setup).await;
        let mut tasks = Vec::new();
        for i in 0..48 {
            let url = env.url();
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::from_url(url).await.unwrap();
                let mut errors = 0;
                for j in 0..100 {
                    let r: Result<Option<i32>, _> = if (i + j) % 10 == 0 {
                        c.query_drop("UPDATE pool_many SET v = 7 WHERE id = 1")
                            .await
                            .map(|()| Some(7))
                    } else {
                        c.query_first("SELECT v FROM pool_many WHERE id = 1").await
                    };
                    match r {
                        Ok(Some(7)) => {}
                        other => {
                            eprintln!("client {i}: {other:?}");
                            errors += 1;
                        }
                    }
                }
                c.disconnect().await.unwrap();
                errors
            }));
        }
        let mut errors = 0;
        for t in tasks {
            errors += t.await.unwrap();
        }
        assert_eq!(errors, 0, "48 clients × 100 statements without an error");
        for (server, idle, open) in pool_counts(&mut setup).await {
            let open = open.expect("capped servers report their open connections");
            assert!(open <= 4, "{server}: {open} connections open");
            assert!(idle <= open, "{server}: {idle} idle of {open}");
        }
        // Without reuse each of the 48 sessions would log in at least once. With it, 12 logins
        // fill the pool; a few more replace connections closed on the way (CI once saw 13 with
        // 4 sandboxes and their proxies loading 2 cores).
        let logins = logins(&mut setup).await - logins_before;
        assert!(
            logins <= 24,
            "48 sessions made {logins} backend logins through a pool of 3 × 4"
        );
    });
}

/// Prepared statements do not pin a session: 24 clients, each with its statements prepared
/// and all connected until every one is done, share 2 connections per server. The same text
/// executed with other parameter types by other sessions on the same server statement returns
/// each session's own values, and each server prepares it once per connection.
#[test]
fn prepared_statements_do_not_pin_sessions() {
    let env = start(2, "max_per_server = 2\nwait_timeout_ms = 5000");
    rt().block_on(async {
        let mut setup = seeded(
            &env,
            &[
                "CREATE TABLE IF NOT EXISTS pool_ps (id INT PRIMARY KEY, v VARCHAR(20))",
                "REPLACE INTO pool_ps VALUES (1, 'one'), (2, 'two')",
            ],
            ("SELECT COUNT(*) FROM app.pool_ps", "2"),
        )
        .await;
        let clients = 24;
        let done = std::sync::Arc::new(tokio::sync::Barrier::new(clients));
        let mut tasks = Vec::new();
        for i in 0..clients {
            let (url, done) = (env.url(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::from_url(url).await.unwrap();
                let echo = c.prep("SELECT ?, ?").await.unwrap();
                let lookup = c.prep("SELECT v FROM pool_ps WHERE id = ?").await.unwrap();
                let mut wrong = Vec::new();
                for j in 0..30i64 {
                    // Even clients bind (integer, string), odd ones (string, double).
                    let (a, b): (mysql_async::Value, mysql_async::Value) = if i % 2 == 0 {
                        ((i as i64 * 1000 + j).into(), format!("s{i}-{j}").into())
                    } else {
                        (format!("t{i}-{j}").into(), (j as f64 + 0.5).into())
                    };
                    let row: Option<mysql_async::Row> =
                        c.exec_first(&echo, (a.clone(), b.clone())).await.unwrap();
                    let row = row.unwrap();
                    let sql = |v: Option<&mysql_async::Value>| v.map(|v| v.as_sql(false));
                    let got = (sql(row.as_ref(0)), sql(row.as_ref(1)));
                    let want = (Some(a.as_sql(false)), Some(b.as_sql(false)));
                    if got != want {
                        wrong.push(format!("{got:?} != {want:?}"));
                    }
                    let id = 1 + (i as i64 + j) % 2;
                    let v: Option<String> = c.exec_first(&lookup, (id,)).await.unwrap();
                    let want = if id == 1 { "one" } else { "two" };
                    if v.as_deref() != Some(want) {
                        wrong.push(format!("id {id}: {v:?}"));
                    }
                }
                // Everyone stays connected, statements prepared, until all are done.
                done.wait().await;
                c.close(echo).await.unwrap();
                c.disconnect().await.unwrap();
                wrong
            }));
        }
        let mut wrong = Vec::new();
        for t in tasks {
            wrong.extend(t.await.unwrap());
        }
        assert!(wrong.is_empty(), "wrong results: {wrong:?}");
        for (server, _, open) in pool_counts(&mut setup).await {
            let open = open.expect("capped");
            assert!(open <= 2, "{server}: {open} connections open");
        }
        for s in env.sandbox.servers() {
            let n: u64 = s
                .scalar(
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                     WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'",
                )
                .unwrap()
                .parse()
                .unwrap();
            // 2 statements on at most 2 connections (plus none leaked per session).
            assert!(n <= 4, "{}: {n} statements prepared", s.name());
        }
    });
}

/// Waits (at most 10 s) until `query` answers `want` on every replica.
/// A session that ran `statements` (a table and its rows), returned once every replica
/// answers `check.1` to `check.0`: new sessions read from the replicas.
async fn seeded(env: &Env, statements: &[&str], check: (&str, &str)) -> Conn {
    let mut c = conn(env).await;
    for sql in statements {
        c.query_drop(*sql).await.unwrap();
    }
    wait_on_replicas(env, check.0, check.1);
    c
}

fn wait_on_replicas(env: &Env, query: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for r in env.sandbox.replicas() {
        while r.scalar(query).ok().as_deref() != Some(want) {
            assert!(
                Instant::now() < deadline,
                "{} never answered {want} to {query}",
                r.name()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn logins(c: &mut Conn) -> u64 {
    status(c, "backend_logins").await.parse().unwrap()
}
