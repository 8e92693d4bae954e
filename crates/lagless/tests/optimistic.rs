//! Optimistic transactions end to end (`[routing] optimistic_transactions = true`): a
//! read-write transaction starts on a replica; one that only reads ends there; one that writes
//! moves to the primary, its reads replayed and checked, with text and prepared statements;
//! one whose reads the primary answers differently is rolled back with ER_LOCK_DEADLOCK and its
//! retry runs on the primary; with autocommit off the read that opens a transaction opens it
//! on a replica; a replica that dies mid-transaction is replaced by the primary, unseen.

use lagless_e2e::{lagless_status as status, rt, Env, EnvOptions};
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn value(c: &mut Conn, id: i64) -> i64 {
    c.query_first(format!("SELECT v FROM o WHERE id = {id}"))
        .await
        .unwrap()
        .unwrap()
}

/// The server_id of the server a read runs on, as a plain table read: `@@server_id` would take
/// the transaction to the primary (see `server_dependent` in the routing crate).
/// Row `id`'s committed `v`, read on the primary directly.
fn on_primary(primary: &lagless_sandbox::Server, id: i64) -> String {
    let v = primary.sql(&format!("SELECT v FROM app.o WHERE id = {id}"));
    v.unwrap().trim().to_string()
}

async fn server_id(c: &mut Conn) -> u32 {
    let v: String = c
        .query_first(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES \
             WHERE VARIABLE_NAME = 'SERVER_ID'",
        )
        .await
        .unwrap()
        .unwrap();
    v.parse().unwrap()
}

/// Until a read runs on a replica again: in the default `gtid` mode, reads after a write go to
/// the primary until a replica is known to have applied it, and so does a BEGIN.
async fn until_replicas_caught_up(c: &mut Conn) {
    let start = std::time::Instant::now();
    loop {
        if server_id(c).await != 1 {
            return;
        }
        assert!(start.elapsed().as_secs() < 10, "no replica caught up");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[test]
fn optimistic_transactions_read_on_replicas_and_move_to_the_primary_to_write() {
    let env = Env::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_lagless")),
        &EnvOptions::with_extra("[routing]\noptimistic_transactions = true\n"),
    )
    .unwrap();
    let primary = env.sandbox.primary();
    rt().block_on(async {
        let mut c = Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE o (id INT PRIMARY KEY, v BIGINT)")
            .await
            .unwrap();
        c.query_drop("INSERT INTO o VALUES (1, 10), (2, 20), (3, 30)")
            .await
            .unwrap();

        // Only reads: the whole transaction runs on a replica.
        until_replicas_caught_up(&mut c).await;
        c.query_drop("BEGIN").await.unwrap();
        let server = status(&mut c, "session_transaction_server").await;
        assert!(
            server.starts_with("replica") && server.ends_with("(optimistic)"),
            "{server}"
        );
        assert_ne!(
            server_id(&mut c).await,
            1,
            "a read of the transaction ran on the primary"
        );
        assert_eq!(value(&mut c, 1).await, 10, "read-your-writes at BEGIN");
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(status(&mut c, "session_in_transaction").await, "false");

        // Reads, then a write: it moves to the primary, the reads replayed and matching.
        until_replicas_caught_up(&mut c).await;
        c.query_drop("START TRANSACTION").await.unwrap();
        let v = value(&mut c, 1).await;
        let w: i64 = c
            .query_first("SELECT SUM(v) FROM o")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((v, w), (10, 60));
        // Rows larger than the relay's 64 KiB reads: digested in pieces, replayed whole.
        let big: Vec<String> = c
            .query("SELECT REPEAT(CHAR(64 + id), 100000) FROM o ORDER BY id")
            .await
            .unwrap();
        assert_eq!(big.len(), 3);
        assert!(big[2].len() == 100_000 && big[2].starts_with('C'));
        assert!(status(&mut c, "session_transaction_server")
            .await
            .ends_with("(optimistic)"));
        c.query_drop("UPDATE o SET v = v + 1 WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(
            status(&mut c, "session_transaction_server").await,
            "primary"
        );
        assert_eq!(status(&mut c, "optimistic_moved").await, "1");
        // Uncommitted: only this transaction sees it.
        assert_eq!(value(&mut c, 1).await, 11);
        assert_eq!(on_primary(primary, 1), "10");
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(on_primary(primary, 1), "11");

        // The same with prepared statements (COM_STMT_EXECUTE replayed on the primary).
        until_replicas_caught_up(&mut c).await;
        c.query_drop("BEGIN").await.unwrap();
        let v: i64 = c
            .exec_first("SELECT v FROM o WHERE id = ?", (2,))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, 20);
        // A statement prepared, executed and closed inside the transaction (a driver that does
        // so for each query): the replay still has it.
        let st = c.prep("SELECT v * 10 FROM o WHERE id = ?").await.unwrap();
        let ten: i64 = c.exec_first(&st, (2,)).await.unwrap().unwrap();
        assert_eq!(ten, 200);
        c.close(st).await.unwrap();
        c.exec_drop("UPDATE o SET v = ? WHERE id = ?", (v + 5, 2))
            .await
            .unwrap();
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(status(&mut c, "optimistic_moved").await, "2");
        assert_eq!(on_primary(primary, 2), "25");

        // The primary has newer data than the replica's snapshot showed: the move fails, the
        // transaction is rolled back, and the client is told to retry.
        until_replicas_caught_up(&mut c).await;
        c.query_drop("BEGIN").await.unwrap();
        assert_eq!(value(&mut c, 3).await, 30);
        let mut other = Conn::from_url(env.url()).await.unwrap();
        other
            .query_drop("UPDATE o SET v = 31 WHERE id = 3")
            .await
            .unwrap();
        // Whatever replication did meanwhile, the transaction's snapshot still says 30.
        assert_eq!(value(&mut c, 3).await, 30);
        let err = c
            .query_drop("UPDATE o SET v = v + 100 WHERE id = 3")
            .await
            .unwrap_err();
        match err {
            mysql_async::Error::Server(e) => {
                assert_eq!(e.code, 1213, "{e:?}");
                assert_eq!(e.state, "40001");
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(status(&mut c, "session_in_transaction").await, "false");
        assert_eq!(status(&mut c, "optimistic_differed").await, "1");
        assert_eq!(on_primary(primary, 3), "31");
        // The retry starts on the primary, and works.
        c.query_drop("BEGIN").await.unwrap();
        assert_eq!(
            status(&mut c, "session_transaction_server").await,
            "primary"
        );
        assert_eq!(value(&mut c, 3).await, 31);
        c.query_drop("UPDATE o SET v = v + 100 WHERE id = 3")
            .await
            .unwrap();
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(on_primary(primary, 3), "131");
        // And the one after goes back to a replica.
        until_replicas_caught_up(&mut c).await;
        c.query_drop("BEGIN").await.unwrap();
        assert!(status(&mut c, "session_transaction_server")
            .await
            .ends_with("(optimistic)"));
        c.query_drop("ROLLBACK").await.unwrap();

        // A read that depends on the server, as Lagless sees it (NOW(), @@server_id, ...):
        // it takes the transaction to the primary at once, where it runs.
        c.query_drop("BEGIN").await.unwrap();
        assert_eq!(value(&mut c, 1).await, 11);
        let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
        assert_eq!(sid, 1);
        assert_eq!(
            status(&mut c, "session_transaction_server").await,
            "primary"
        );
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(status(&mut c, "optimistic_differed").await, "1");

        // One that Lagless does not see: the server_id from a table. It differs on the
        // primary, so the move fails, safely.
        until_replicas_caught_up(&mut c).await;
        c.query_drop("BEGIN").await.unwrap();
        assert_ne!(server_id(&mut c).await, 1);
        let err = c
            .query_drop("UPDATE o SET v = 0 WHERE id = 1")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, mysql_async::Error::Server(e) if e.code == 1213),
            "{err:?}"
        );
        assert_eq!(on_primary(primary, 1), "11");
        assert_eq!(status(&mut c, "optimistic_differed").await, "2");

        // Autocommit off (PyMySQL's and SQLAlchemy's default): the read that opens the
        // transaction opens it on a replica; the first write moves it.
        let mut a = Conn::from_url(env.url()).await.unwrap();
        a.query_drop("SET autocommit = 0").await.unwrap();
        until_replicas_caught_up(&mut a).await;
        assert_eq!(value(&mut a, 2).await, 25);
        assert!(status(&mut a, "session_transaction_server")
            .await
            .ends_with("(optimistic)"));
        let ac: String = a
            .query_first(
                "SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES \
                 WHERE VARIABLE_NAME = 'AUTOCOMMIT'",
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ac, "OFF",
            "the replica's connection has the session's autocommit"
        );
        assert!(status(&mut a, "session_transaction_server")
            .await
            .ends_with("(optimistic)"));
        a.query_drop("UPDATE o SET v = v * 2 WHERE id = 2")
            .await
            .unwrap();
        assert_eq!(
            status(&mut a, "session_transaction_server").await,
            "primary"
        );
        assert_eq!(value(&mut a, 2).await, 50);
        assert_eq!(on_primary(primary, 2), "25");
        a.query_drop("COMMIT").await.unwrap();
        assert_eq!(on_primary(primary, 2), "50");
        assert_eq!(status(&mut a, "session_autocommit").await, "false");
        // A write with autocommit off and no transaction open: on the primary, and kept
        // uncommitted until COMMIT, as on one server.
        a.query_drop("UPDATE o SET v = 7 WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(on_primary(primary, 1), "11");
        a.query_drop("ROLLBACK").await.unwrap();
        assert_eq!(on_primary(primary, 1), "11");

        // The replica dies in the middle of an optimistic transaction: the next statement finds
        // the transaction on the primary, replayed, and the client sees no error.
        let mut k = Conn::from_url(env.url()).await.unwrap();
        until_replicas_caught_up(&mut k).await;
        k.query_drop("BEGIN").await.unwrap();
        assert_eq!(value(&mut k, 1).await, 11);
        let server = status(&mut k, "session_transaction_server").await;
        let name = server.strip_suffix(" (optimistic)").expect(&server);
        env.sandbox.server(name).unwrap().kill().unwrap();
        assert_eq!(value(&mut k, 1).await, 11);
        assert_eq!(
            status(&mut k, "session_transaction_server").await,
            "primary"
        );
        k.query_drop("UPDATE o SET v = 12 WHERE id = 1")
            .await
            .unwrap();
        k.query_drop("COMMIT").await.unwrap();
        assert_eq!(on_primary(primary, 1), "12");
    });
}

/// sysbench oltp_read_write with prepared statements through optimistic transactions: 4
/// threads updating the same rows make moves fail (error 1213, which sysbench ignores and
/// retries), and libmariadb sends a statement's parameter types only with its first execution,
/// even when that failed: no other error may appear (error 1210 did, before the types were
/// recorded ahead of the move). Then SQLAlchemy ORM sessions, whose autocommit is off.
#[test]
fn sysbench_and_sqlalchemy_through_optimistic_transactions() {
    let env = Env::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_lagless")),
        &EnvOptions::with_extra("[routing]\noptimistic_transactions = true\n"),
    )
    .unwrap();
    let sb = |args: &[&str]| {
        let mut all = vec!["--tables=2", "--table-size=200"];
        all.extend_from_slice(args);
        lagless_e2e::sysbench(env.port(), &all)
    };
    let prep = sb(&["prepare"]);
    assert!(prep.status.success(), "{prep:?}");
    for mode in ["--db-ps-mode=auto", "--db-ps-mode=disable"] {
        let run = sb(&[
            "--threads=4",
            "--time=6",
            "--report-interval=0",
            mode,
            "run",
        ]);
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            run.status.success(),
            "{mode}: {text}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let count = |label: &str| -> u64 {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("no {label} in {text}"));
            line.trim_start()[label.len()..]
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{line}"))
        };
        assert!(count("transactions:") > 100, "{mode}: {text}");
        assert_eq!(count("reconnects:"), 0, "{mode}: {text}");
        println!(
            "{mode}: {} transactions, {} ignored errors (1213)",
            count("transactions:"),
            count("ignored errors:")
        );
    }
    rt().block_on(async {
        let mut c = Conn::from_url(env.url()).await.unwrap();
        let moved: u64 = status(&mut c, "optimistic_moved").await.parse().unwrap();
        assert!(moved > 100, "{moved} moves");
    });

    // SQLAlchemy ORM sessions over PyMySQL (autocommit off): tests/python/optimistic.py.
    lagless_e2e::python_checks("optimistic.py", &["--port".into(), env.port().to_string()]);
}
