//! Consistency modes end to end, with real replication lag: the replicas' SQL threads are
//! stopped, so a replica read after a write is stale unless the mode routes around it.

use std::time::{Duration, Instant};

use lagless_e2e::{rt, Env};
use lagless_sandbox::LagAction;
use mysql_async::prelude::*;

async fn conn(env: &Env, mode: &str) -> mysql_async::Conn {
    let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
    c.query_drop(format!("SET @lagless_consistency = '{mode}'"))
        .await
        .unwrap();
    c
}

/// Writes a new value, reads it back on `reader`; returns (value read, server id, read time).
async fn write_then_read(
    writer: &mut mysql_async::Conn,
    reader: Option<&mut mysql_async::Conn>,
    value: i64,
) -> (i64, u32, Duration) {
    writer
        .exec_drop("UPDATE cons SET v = ? WHERE id = 1", (value,))
        .await
        .unwrap();
    let reader = match reader {
        Some(r) => r,
        None => writer,
    };
    let start = Instant::now();
    let (v, sid): (i64, u32) = reader
        .query_first("SELECT v, @@server_id FROM cons WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    (v, sid, start.elapsed())
}

#[test]
fn every_mode_under_real_lag() {
    let env = Env::start(std::path::Path::new(env!("CARGO_BIN_EXE_lagless"))).unwrap();
    rt().block_on(async {
        let mut setup = conn(&env, "gtid").await;
        setup
            .query_drop("CREATE TABLE cons (id INT PRIMARY KEY, v BIGINT)")
            .await
            .unwrap();
        setup
            .query_drop("INSERT INTO cons VALUES (1, 0)")
            .await
            .unwrap();
        env.sandbox
            .wait_caught_up(1, Duration::from_secs(10))
            .unwrap();
        env.sandbox
            .wait_caught_up(2, Duration::from_secs(10))
            .unwrap();
        let got: Option<String> = setup
            .query_first("SELECT @lagless_consistency")
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("gtid"), "the default mode");
        let err = setup
            .query_drop("SET @lagless_consistency = 'sometimes'")
            .await
            .unwrap_err();
        assert!(
            matches!(err, mysql_async::Error::Server(ref e) if e.code == 1231),
            "{err:?}"
        );
    });
    // Replication lag: the replicas receive but do not apply.
    env.sandbox.lag(1, LagAction::StopSql).unwrap();
    env.sandbox.lag(2, LagAction::StopSql).unwrap();
    let mut value = 0i64;
    let mut next = || {
        value += 1;
        value
    };
    rt().block_on(async {
        // Read-your-writes modes: never stale, without waiting out the lag.
        for mode in [
            "gtid",
            "primary",
            "primary_after_write(5000)",
            "position",
            "global",
        ] {
            let mut c = conn(&env, mode).await;
            for _ in 0..5 {
                let v = next();
                let (read, sid, took) = write_then_read(&mut c, None, v).await;
                assert_eq!(read, v, "{mode}: stale read");
                assert_eq!(
                    sid, 1,
                    "{mode}: the replicas are behind, so the primary answers"
                );
                assert!(took < Duration::from_millis(500), "{mode}: waited {took:?}");
            }
        }
        // Waiting modes wait up to their timeout, then fall back to the primary.
        for mode in ["gtid_wait(300)", "pos_wait(1000)"] {
            let mut c = conn(&env, mode).await;
            let v = next();
            let (read, sid, _) = write_then_read(&mut c, None, v).await;
            assert_eq!((read, sid), (v, 1), "{mode}");
        }
        let mut c = conn(&env, "gtid_wait(300)").await;
        let v = next();
        let (_, _, took) = write_then_read(&mut c, None, v).await;
        assert!(
            took >= Duration::from_millis(280),
            "gtid_wait waited {took:?}"
        );
        // Modes that promise nothing show the lag.
        for mode in ["eventual", "delay(200)"] {
            let mut c = conn(&env, mode).await;
            let v = next();
            let (read, sid, _) = write_then_read(&mut c, None, v).await;
            assert!(
                read < v && sid != 1,
                "{mode}: expected a stale replica read, got {read} from {sid}"
            );
        }
        // A hint changes the mode for one statement.
        let mut c = conn(&env, "eventual").await;
        let v = next();
        c.exec_drop("UPDATE cons SET v = ? WHERE id = 1", (v,))
            .await
            .unwrap();
        let (read, sid): (i64, u32) = c
            .query_first(
                "/* lagless:consistency=gtid */ SELECT v, @@server_id FROM cons WHERE id = 1",
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!((read, sid), (v, 1), "hinted statement reads its write");
        let (read, _): (i64, u32) = c
            .query_first("SELECT v, @@server_id FROM cons WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        assert!(
            read < v,
            "the session's own mode is back for the next statement"
        );
        // max_lag: with the SQL thread stopped Seconds_Behind_Master is NULL, the lag unknown, so
        // the replicas are excluded (and until the monitor reports, nothing is known).
        let mut c = conn(&env, "max_lag(3600)").await;
        let v = next();
        let (read, sid, _) = write_then_read(&mut c, None, v).await;
        assert_eq!(
            (read, sid),
            (v, 1),
            "max_lag excludes replicas of unknown lag"
        );
        // Across connections: another session in gtid mode does not know the write...
        let mut writer = conn(&env, "gtid").await;
        let mut other = conn(&env, "gtid").await;
        let v = next();
        let (read, _, _) = write_then_read(&mut writer, Some(&mut other), v).await;
        assert!(read < v, "a fresh session in gtid mode reads the replica");
        // ...unless it is given the writer's causal token,
        let v = next();
        writer
            .exec_drop("UPDATE cons SET v = ? WHERE id = 1", (v,))
            .await
            .unwrap();
        let token: String = writer
            .query_first("SELECT @lagless_token")
            .await
            .unwrap()
            .unwrap();
        assert!(token.starts_with("gtid:"), "{token}");
        other
            .query_drop(format!("SET @lagless_token = '{token}'"))
            .await
            .unwrap();
        let (read, _): (i64, u32) = other
            .query_first("SELECT v, @@server_id FROM cons WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, v, "token carries read-your-writes across connections");
        let bad = other
            .query_drop("SET @lagless_token = 'nonsense'")
            .await
            .unwrap_err();
        assert!(matches!(bad, mysql_async::Error::Server(ref e) if e.code == 1231));
        // ...or reads in global mode, which sees every session's writes.
        let mut global = conn(&env, "global").await;
        let v = next();
        let (read, _, _) = write_then_read(&mut writer, Some(&mut global), v).await;
        assert_eq!(read, v, "global: read-your-writes across connections");
    });
    rt().block_on(async {
        // The monitor's view: SQL threads stopped, Seconds_Behind_Master NULL.
        let mut c = conn(&env, "gtid").await;
        let rows: Vec<mysql_async::Row> = c.query("SHOW LAGLESS REPLICATION").await.unwrap();
        assert_eq!(rows.len(), 3, "one row per server");
        for r in &rows {
            let name: String = r.get("server").unwrap();
            let io_sql: Option<String> = r.get("io/sql").unwrap();
            if name.starts_with("replica") {
                assert_eq!(io_sql.as_deref(), Some("Yes/No"), "{name}");
                let sbm: Option<String> = r.get("seconds_behind_master").unwrap();
                assert_eq!(sbm, None, "{name}: NULL while the SQL thread is stopped");
            }
        }
    });
    env.sandbox.lag(1, LagAction::Resume).unwrap();
    env.sandbox.lag(2, LagAction::Resume).unwrap();
    // MASTER_DELAY: a delayed event has just arrived, Seconds_Behind_Master still reads 0, so
    // max_lag lets a replica that lacks the write serve the read.
    env.sandbox.lag(1, LagAction::Delay(3)).unwrap();
    env.sandbox.lag(2, LagAction::Delay(3)).unwrap();
    rt().block_on(async {
        tokio::time::sleep(Duration::from_millis(600)).await; // monitor rounds after the change
        let mut c = conn(&env, "max_lag(1)").await;
        let mut stale = 0;
        for _ in 0..3 {
            let v = next();
            let (read, _, _) = write_then_read(&mut c, None, v).await;
            if read < v {
                stale += 1;
            }
        }
        assert!(
            stale > 0,
            "max_lag(1) never read stale under a 3 s MASTER_DELAY"
        );
        // gtid mode routes around the same lag.
        let mut g = conn(&env, "gtid").await;
        let v = next();
        let (read, sid, _) = write_then_read(&mut g, None, v).await;
        assert_eq!((read, sid), (v, 1));
        // pos_wait waits on a replica (its SQL thread runs, 3 s behind) for its timeout, then
        // reads on the primary. MASTER_POS_WAIT takes whole seconds: a shorter timeout is
        // kept by the proxy, which then gives the connection up.
        let mut c = conn(&env, "pos_wait(300)").await;
        for _ in 0..3 {
            let v = next();
            let (read, sid, took) = write_then_read(&mut c, None, v).await;
            assert_eq!((read, sid), (v, 1), "pos_wait(300)");
            assert!(
                took >= Duration::from_millis(280) && took < Duration::from_millis(900),
                "pos_wait(300) waited {took:?}"
            );
        }
    });
    env.sandbox.lag(1, LagAction::Resume).unwrap();
    env.sandbox.lag(2, LagAction::Resume).unwrap();
    rt().block_on(async {
        // Caught up: reads after writes are served by the replicas again.
        let mut c = conn(&env, "gtid").await;
        let mut on_replica = 0;
        for _ in 0..10 {
            let v = next();
            let (read, sid, _) = write_then_read(&mut c, None, v).await;
            assert_eq!(read, v);
            if sid != 1 {
                on_replica += 1;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("reads right after a write served by a replica: {on_replica}/10");
        assert!(
            on_replica >= 3,
            "only {on_replica}/10 reads after a write on a replica"
        );
    });
}

/// A replica that has not applied a schema change answers "no such table" (or column); such a
/// read, text or prepared, runs on the primary instead, and only an error the primary gives
/// too reaches the client.
#[test]
fn a_read_of_what_the_replicas_lack_runs_on_the_primary() {
    let env = Env::start(std::path::Path::new(env!("CARGO_BIN_EXE_lagless"))).unwrap();
    rt().block_on(async {
        let mut setup = conn(&env, "gtid").await;
        setup
            .query_drop("CREATE TABLE widened (id INT PRIMARY KEY)")
            .await
            .unwrap();
        setup
            .query_drop("INSERT INTO widened VALUES (1)")
            .await
            .unwrap();
        // A table of the same name in the session's schema and, later, in a new database.
        setup.query_drop("CREATE TABLE twin (v INT)").await.unwrap();
        setup
            .query_drop("INSERT INTO twin VALUES (1)")
            .await
            .unwrap();
        // The application may use a database not created yet (replicated to every server).
        env.sandbox
            .primary()
            .sql("GRANT ALL PRIVILEGES ON newdb.* TO 'app'@'%'")
            .unwrap();
        for i in 1..=2 {
            env.sandbox
                .wait_caught_up(i, Duration::from_secs(10))
                .unwrap();
        }
        env.sandbox.lag(1, LagAction::StopSql).unwrap();
        env.sandbox.lag(2, LagAction::StopSql).unwrap();
        setup
            .query_drop("CREATE TABLE fresh (id INT PRIMARY KEY, v INT)")
            .await
            .unwrap();
        setup
            .query_drop("INSERT INTO fresh VALUES (1, 10)")
            .await
            .unwrap();
        setup
            .query_drop("ALTER TABLE widened ADD COLUMN extra INT NOT NULL DEFAULT 7")
            .await
            .unwrap();
        for sql in [
            "CREATE DATABASE newdb",
            "CREATE TABLE newdb.twin (v INT)",
            "INSERT INTO newdb.twin VALUES (2)",
        ] {
            setup.query_drop(sql).await.unwrap();
        }
        let primary_id: u32 = setup
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();

        // Another session, reading from the replicas.
        let mut reader = conn(&env, "eventual").await;
        let replica_id: u32 = reader
            .query_first("SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(replica_id, primary_id, "the session reads from a replica");
        let (v, sid): (i32, u32) = reader
            .query_first("SELECT v, @@server_id FROM fresh WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((v, sid), (10, primary_id), "text read of a new table");
        let v: Option<i32> = reader
            .exec_first("SELECT v FROM fresh WHERE id = ?", (1,))
            .await
            .unwrap();
        assert_eq!(v, Some(10), "prepared read of a new table");
        let extra: Option<i32> = reader
            .query_first("SELECT extra FROM widened WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(extra, Some(7), "read of a new column");
        let err = reader
            .query_drop("SELECT * FROM never_created")
            .await
            .unwrap_err();
        assert!(
            matches!(err, mysql_async::Error::Server(ref e) if e.code == 1146),
            "{err:?}"
        );
        // Text, prepare, execute, column, and the missing table's first try.
        assert_eq!(
            lagless_e2e::lagless_status(&mut reader, "reads_schema_behind_to_primary").await,
            "5"
        );
        // A database the replicas lack: a read must not run in the connection's old schema.
        reader.query_drop("USE newdb").await.unwrap();
        let v: Option<i32> = reader.query_first("SELECT v FROM twin").await.unwrap();
        assert_eq!(v, Some(2), "read in the new database, not in app");
        let v: Option<i32> = reader
            .exec_first("SELECT v FROM twin WHERE v > ?", (0,))
            .await
            .unwrap();
        assert_eq!(v, Some(2), "prepared read in the new database");
        let url = env.url().replace("/app?", "/newdb?");
        assert!(url.contains("/newdb?"), "{url}");
        let mut in_newdb = mysql_async::Conn::from_url(url).await.unwrap();
        in_newdb
            .query_drop("SET @lagless_consistency = 'eventual'")
            .await
            .unwrap();
        let v: Option<i32> = in_newdb.query_first("SELECT v FROM twin").await.unwrap();
        assert_eq!(v, Some(2), "a session opened in the new database");
        reader.query_drop("USE app").await.unwrap();
        // The new database: text, prepare, execute, and the session opened there (whose
        // driver may run a read of its own at connect).
        let n: u64 = lagless_e2e::lagless_status(&mut reader, "reads_schema_behind_to_primary")
            .await
            .parse()
            .unwrap();
        assert!(n >= 9, "{n}");
        // The session's replica was not set aside: its next plain read is served there.
        let sid: u32 = reader
            .query_first("SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sid, replica_id);
    });
    env.sandbox.lag(1, LagAction::Resume).unwrap();
    env.sandbox.lag(2, LagAction::Resume).unwrap();
}
