//! Transaction replay (`[failover] transaction_replay = true`): a transaction whose primary
//! connection is lost (here killed with KILL on the server, between two statements) is replayed
//! on a new connection and goes on without an error; one whose reads the primary now answers
//! differently is rolled back with ER_LOCK_DEADLOCK. (Failover of a dead primary in the middle of
//! a transaction: `failover.rs`.)

use lagless_e2e::{rt, Env, EnvOptions};
use lagless_sandbox::Server;
use mysql_async::prelude::*;
use mysql_async::Conn;

async fn status(c: &mut Conn, name: &str) -> String {
    let rows: Vec<(String, String)> = c.query("SHOW LAGLESS STATUS").await.unwrap();
    rows.into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in SHOW LAGLESS STATUS"))
}

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
        &EnvOptions {
            extra: "[failover]\ntransaction_replay = true\n".into(),
            ..EnvOptions::default()
        },
    )
    .unwrap();
    let primary = env.sandbox.primary();
    rt().block_on(async {
        let mut c = Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE r (id INT PRIMARY KEY, v INT)")
            .await
            .unwrap();
        c.query_drop("INSERT INTO r VALUES (100, 10)")
            .await
            .unwrap();

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
        let err = c
            .query_drop("UPDATE r SET v = v + 1 WHERE id = 100")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, mysql_async::Error::Server(e) if e.code == 1213),
            "{err:?}"
        );
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
    });
}
