//! Transaction replay (`[failover] transaction_replay = true`): a transaction whose primary
//! connection is lost (here killed with KILL on the server, between two statements) is replayed
//! on a new connection and goes on without an error; one whose reads the primary now answers
//! differently is rolled back with ER_LOCK_DEADLOCK. (Failover of a dead primary in the middle of
//! a transaction: `failover.rs`.)

use lagless_e2e::raw::{raw_login, recv, recv_until, send};
use lagless_e2e::{lagless_status as status, rt, Env, EnvOptions};
use lagless_protocol::consts::{Command, CLIENT_DEPRECATE_EOF};
use lagless_sandbox::Server;
use mysql_async::prelude::*;
use mysql_async::Conn;

/// Kills, on the primary, the connection of the one open InnoDB transaction. INNODB_TRX is a
/// cache that the server refreshes only when it was not read for 100 ms: read it less often.
fn kill_the_open_transaction(primary: &Server) {
    let start = std::time::Instant::now();
    let id = loop {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let id = primary
            .sql(
                "SELECT t.trx_mysql_thread_id FROM information_schema.INNODB_TRX t \
                 JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id",
            )
            .unwrap();
        if !id.trim().is_empty() {
            break id.trim().to_string();
        }
        assert!(start.elapsed().as_secs() < 3, "no open transaction");
    };
    assert!(!id.contains('\n'), "open transactions: {id:?}");
    primary.sql(&format!("KILL {id}")).unwrap();
}

/// Runs `sql`, which must fail with 1213 (the transaction rolled back, retry) for a reason
/// containing `why`.
async fn told_to_retry(c: &mut Conn, sql: &str, why: &str) {
    match c.query_drop(sql).await {
        Err(mysql_async::Error::Server(e)) if e.code == 1213 && e.message.contains(why) => {}
        other => panic!("{sql}: {other:?}, wanted 1213 for {why:?}"),
    }
}

/// A session on `env`, and the table `r` with one row (100, 10).
async fn with_table_r(env: &Env) -> Conn {
    let mut c = Conn::from_url(env.url()).await.unwrap();
    c.query_drop("CREATE TABLE r (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO r VALUES (100, 10)")
        .await
        .unwrap();
    c
}

fn rows(primary: &Server, table: &str) -> String {
    primary
        .sql(&format!(
            "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.{table}"
        ))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_transaction_whose_connection_is_killed_goes_on_or_is_told_to_retry() {
    let env = Env::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_lagless")),
        &EnvOptions::with_extra("[failover]\ntransaction_replay = true\n"),
    )
    .unwrap();
    let primary = env.sandbox.primary();
    rt().block_on(async {
        let mut c = with_table_r(&env).await;

        // Writes and a read, the connection killed, then more: all of it commits once.
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO r VALUES (1, 1)").await.unwrap();
        c.exec_drop("UPDATE r SET v = v + ? WHERE id = ?", (1, 100))
            .await
            .unwrap();
        let v: i64 = c
            .query_first("SELECT v FROM r WHERE id = 100")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, 11);
        kill_the_open_transaction(primary);
        c.query_drop("INSERT INTO r VALUES (2, 2)").await.unwrap();
        assert_eq!(status(&mut c, "transactions_resumed").await, "1");
        assert_eq!(status(&mut c, "session_in_transaction").await, "true");
        assert_eq!(rows(primary, "r"), "100", "nothing committed yet");
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(rows(primary, "r"), "1,2,100");
        assert_eq!(
            primary
                .sql("SELECT v FROM app.r WHERE id = 100")
                .unwrap()
                .trim(),
            "11",
            "the UPDATE applied once"
        );

        // The row changed since the transaction read it: the replay's read differs.
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO r VALUES (4, 4)").await.unwrap();
        let v: i64 = c
            .query_first("SELECT v FROM r WHERE id = 100")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, 11);
        kill_the_open_transaction(primary);
        primary
            .sql("UPDATE app.r SET v = 50 WHERE id = 100")
            .unwrap();
        told_to_retry(&mut c, "UPDATE r SET v = v + 1 WHERE id = 100", "").await;
        assert_eq!(status(&mut c, "transactions_not_resumed").await, "1");
        assert_eq!(status(&mut c, "session_in_transaction").await, "false");
        assert_eq!(
            primary
                .sql("SELECT v FROM app.r WHERE id = 100")
                .unwrap()
                .trim(),
            "50"
        );
        // Nothing of it stays (no row 4), and the session goes on.
        c.query_drop("INSERT INTO r VALUES (3, 3)").await.unwrap();
        assert_eq!(rows(primary, "r"), "1,2,3,100");
        // A session variable changed inside the transaction: the statements before it would
        // replay under the new value (a TIMESTAMP read in another time zone), so it is not
        // replayed.
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO r VALUES (7, 7)").await.unwrap();
        c.query_drop("SET time_zone = '+02:00'").await.unwrap();
        kill_the_open_transaction(primary);
        told_to_retry(&mut c, "INSERT INTO r VALUES (8, 8)", "changed during").await;
        assert_eq!(rows(primary, "r"), "1,2,3,100");
    });

    // A user variable lives on the lost connection: a replay would insert NULL.
    rt().block_on(async {
        let mut c = Conn::from_url(env.url()).await.unwrap();
        c.query_drop("SET @v = 9").await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO r VALUES (9, @v)").await.unwrap();
        kill_the_open_transaction(primary);
        told_to_retry(&mut c, "INSERT INTO r VALUES (10, 10)", "lost connection").await;
        assert_eq!(rows(primary, "r"), "1,2,3,100");
    });

    // A parameter sent apart (COM_STMT_SEND_LONG_DATA) is consumed by its execution: such a
    // transaction is not replayed (it would insert an empty value), the client is told.
    rt().block_on(async {
        let mut c = raw_login(env.port(), "app", "lagless", CLIENT_DEPRECATE_EOF)
            .await
            .unwrap();
        let query = |sql: &str| {
            let mut p = vec![Command::Query as u8];
            p.extend_from_slice(sql.as_bytes());
            p
        };
        send(&mut c, &query("BEGIN")).await.unwrap();
        assert_eq!(recv(&mut c).await.unwrap().payload[0], 0x00);
        let mut p = vec![Command::StmtPrepare as u8];
        p.extend_from_slice(b"INSERT INTO r VALUES (5, LENGTH(?))");
        send(&mut c, &p).await.unwrap();
        let prep = recv(&mut c).await.unwrap();
        let stmt = u32::from_le_bytes(prep.payload[1..5].try_into().unwrap());
        recv_until(&mut c, |_| true).await.unwrap(); // the parameter's definition
        let mut p = vec![Command::StmtSendLongData as u8];
        p.extend_from_slice(&stmt.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&[b'z'; 1000]);
        send(&mut c, &p).await.unwrap();
        let mut p = vec![Command::StmtExecute as u8];
        p.extend_from_slice(&stmt.to_le_bytes());
        p.push(0); // no cursor
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(0); // NULL bitmap
        p.push(1); // new params bound
        p.extend_from_slice(&[0xFE, 0x00]); // MYSQL_TYPE_STRING
        send(&mut c, &p).await.unwrap();
        assert_eq!(recv(&mut c).await.unwrap().payload[0], 0x00, "inserted");
        kill_the_open_transaction(primary);
        send(&mut c, &query("INSERT INTO r VALUES (6, 6)"))
            .await
            .unwrap();
        let err = recv(&mut c).await.unwrap().payload;
        assert_eq!(err[0], 0xFF);
        assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1213);
        let message = String::from_utf8_lossy(&err[9..]).into_owned();
        assert!(message.contains("long data"), "{message}");
        assert_eq!(rows(primary, "r"), "1,2,3,100", "nothing of it stays");
    });
}

/// Both settings: an optimistic transaction moved to the primary, whose primary connection is
/// then lost, is replayed from its BEGIN (its reads on the replica included): nothing commits
/// before its COMMIT, everything once after.
#[test]
fn a_moved_optimistic_transaction_is_replayed_whole() {
    let env = Env::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_lagless")),
        &EnvOptions::with_extra(
            "[failover]\ntransaction_replay = true\n\n[routing]\noptimistic_transactions = true\n",
        ),
    )
    .unwrap();
    let primary = env.sandbox.primary();
    rt().block_on(async {
        let mut c = with_table_r(&env).await;
        // Until a replica has the rows (the optimistic BEGIN needs one in gtid mode).
        let start = std::time::Instant::now();
        loop {
            c.query_drop("BEGIN").await.unwrap();
            let at = status(&mut c, "session_transaction_server").await;
            if at.ends_with("(optimistic)") {
                break;
            }
            c.query_drop("ROLLBACK").await.unwrap();
            assert!(start.elapsed().as_secs() < 10, "no replica caught up");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let v: i64 = c
            .query_first("SELECT v FROM r WHERE id = 100")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, 10);
        c.query_drop("INSERT INTO r VALUES (1, 1)").await.unwrap();
        assert_eq!(
            status(&mut c, "session_transaction_server").await,
            "primary"
        );
        kill_the_open_transaction(primary);
        c.query_drop("INSERT INTO r VALUES (2, 2)").await.unwrap();
        assert_eq!(status(&mut c, "transactions_resumed").await, "1");
        assert_eq!(rows(primary, "r"), "100", "nothing committed before COMMIT");
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(rows(primary, "r"), "1,2,100");
    });
}
