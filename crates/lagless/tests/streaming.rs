//! GTID streaming end to end: with the monitor polling only every 5 s, a replica's applied
//! write reaches the routing view through its binlog stream within milliseconds, and the read
//! after it is served by a replica; the primary's stream, started by the first session in a
//! position mode, gives each write's binlog position, so `pos_wait` reads wait on a replica
//! instead of going to the primary; when the monitor account
//! loses REPLICATION SLAVE, the streams are refused and routing falls back to polling (reads
//! stay fresh).

use std::time::{Duration, Instant};

use lagless_e2e::{rt, Env, EnvOptions};
use lagless_routing::gtid::MariaPos;
use mysql_async::prelude::*;
use mysql_async::Conn;

/// (server, gtid_source, binlog_stream, executed_gtid) of every server.
async fn backends(c: &mut Conn) -> Vec<(String, String, Option<String>, Option<String>)> {
    let rows: Vec<mysql_async::Row> = c.query("SHOW LAGLESS BACKENDS").await.unwrap();
    rows.into_iter()
        .map(|r| {
            (
                r.get::<String, _>("server").unwrap(),
                r.get::<String, _>("gtid_source").unwrap(),
                r.get::<Option<String>, _>("binlog_stream").unwrap(),
                r.get::<Option<String>, _>("executed_gtid").unwrap(),
            )
        })
        .collect()
}

async fn wait_backends(
    c: &mut Conn,
    within: Duration,
    what: &str,
    ok: impl Fn(&[(String, String, Option<String>, Option<String>)]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let b = backends(c).await;
        if ok(&b) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "no {what} within {within:?}: {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn write(c: &mut Conn, v: i64) {
    c.exec_drop("UPDATE s SET v = ? WHERE id = 1", (v,))
        .await
        .unwrap();
}

/// The row's value and the server that answered.
async fn read_row(c: &mut Conn) -> (i64, u32) {
    c.query_first("SELECT v, @@server_id FROM s WHERE id = 1")
        .await
        .unwrap()
        .unwrap()
}

fn replicas_have(b: &[(String, String, Option<String>, Option<String>)], need: &MariaPos) -> bool {
    b.iter().filter(|s| s.0 != "primary").all(|s| {
        s.3.as_deref()
            .and_then(|g| g.parse::<MariaPos>().ok())
            .is_some_and(|g| g.contains(need))
    })
}

#[test]
fn streamed_gtids_make_replicas_eligible_between_polls_and_refusal_falls_back() {
    let env = Env::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_lagless")),
        &EnvOptions {
            extra: "[monitor]\ninterval_ms = 5000\n".into(),
            ..EnvOptions::default()
        },
    )
    .unwrap();
    let primary_id = env.sandbox.primary().server_id();
    rt().block_on(async {
        let mut c = Conn::from_url(env.url()).await.unwrap();
        let mut admin = Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE s (id INT PRIMARY KEY, v BIGINT)")
            .await
            .unwrap();
        c.query_drop("INSERT INTO s VALUES (1, 0)").await.unwrap();
        wait_backends(
            &mut admin,
            Duration::from_secs(10),
            "the replicas streaming, the primary idle (no position mode used yet)",
            |b| {
                b.iter().all(|s| {
                    if s.0 == "primary" {
                        s.1 == "poll" && s.2.as_deref().is_some_and(|st| st.starts_with("idle"))
                    } else {
                        s.1 == "stream" && s.2.as_deref() == Some("streaming")
                    }
                })
            },
        )
        .await;

        let mut slowest = Duration::ZERO;
        let mut on_replica = 0;
        for v in 1..=10i64 {
            write(&mut c, v).await;
            let written = Instant::now();
            let need: MariaPos = env
                .sandbox
                .primary()
                .gtid_binlog_pos()
                .unwrap()
                .to_string()
                .parse()
                .unwrap();
            wait_backends(
                &mut admin,
                Duration::from_millis(2000),
                "the write in both replicas' executed GTIDs",
                |b| replicas_have(b, &need),
            )
            .await;
            slowest = slowest.max(written.elapsed());
            let (read, sid) = read_row(&mut c).await;
            assert_eq!(read, v, "read-your-writes");
            if sid != primary_id {
                on_replica += 1;
            }
        }
        eprintln!("slowest write to executed on both replicas in the routing view: {slowest:?}; reads on replicas: {on_replica}/10");
        // The monitor polls every 5 s: only the streams can explain this.
        assert!(slowest < Duration::from_millis(500), "{slowest:?}");
        assert_eq!(on_replica, 10, "known applied: every read on a replica");

        // pos_wait: the write's binlog position comes from the primary's stream (the monitor
        // would only give it at its next poll, up to 5 s later, and meanwhile every read
        // would go to the primary), so the read waits on a replica for it.
        c.query_drop("SET @lagless_consistency = 'pos_wait(3000)'")
            .await
            .unwrap();
        // The first statement in a position mode starts the primary's stream.
        c.query_drop("SELECT 1").await.unwrap();
        wait_backends(
            &mut admin,
            Duration::from_secs(5),
            "the primary streaming once a session used a position mode",
            |b| {
                b.iter()
                    .any(|s| s.0 == "primary" && s.2.as_deref() == Some("streaming"))
            },
        )
        .await;
        let mut on_replica = 0;
        for v in 21..=30i64 {
            write(&mut c, v).await;
            let (read, sid) = read_row(&mut c).await;
            assert_eq!(read, v, "read-your-writes in pos_wait");
            if sid != primary_id {
                on_replica += 1;
            }
        }
        assert_eq!(on_replica, 10, "pos_wait reads waited on replicas");
        let status = env.sandbox.primary().sql("SHOW MASTER STATUS").unwrap();
        let mut fields = status.split('\t');
        let (file, pos) = (fields.next().unwrap(), fields.next().unwrap());
        let rows: Vec<mysql_async::Row> = admin.query("SHOW LAGLESS BACKENDS").await.unwrap();
        let streamed: Option<String> = rows
            .iter()
            .find(|r| r.get::<String, _>("server").as_deref() == Some("primary"))
            .and_then(|r| r.get::<Option<String>, _>("streamed_binlog_pos").unwrap());
        assert_eq!(streamed, Some(format!("{file}:{pos}")));
        // The session's own view of it: mode, last write, its place in the binlog.
        let status: Vec<(String, String)> = c.query("SHOW LAGLESS STATUS").await.unwrap();
        let get = |k: &str| status.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("session_consistency").as_deref(), Some("pos_wait(3000)"));
        let last_gtid = env.sandbox.primary().gtid_binlog_pos().unwrap().to_string();
        assert_eq!(get("session_write_gtids"), Some(last_gtid));
        assert_eq!(
            get("session_write_binlog_pos"),
            Some(format!("{file}:{pos} (stream)"))
        );

        // position: a read that finds no replica known to have its write asks the monitor
        // for a round now, so a replica serves the reads again well before the next regular
        // probe (every 5 s here).
        c.query_drop("SET @lagless_consistency = 'position'")
            .await
            .unwrap();
        for v in 31..=33i64 {
            write(&mut c, v).await;
            let written = Instant::now();
            loop {
                let (read, sid) = read_row(&mut c).await;
                assert_eq!(read, v, "read-your-writes in position");
                if sid != primary_id {
                    break;
                }
                assert!(
                    written.elapsed() < Duration::from_millis(1500),
                    "no replica read within 1.5 s of write {v}: the monitor was not asked"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            eprintln!("position: write {v} read on a replica after {:?}", written.elapsed());
        }
        c.query_drop("SET @lagless_consistency = 'gtid'").await.unwrap();

        // The monitor account loses REPLICATION SLAVE (replicated to the replicas), and the
        // streams are cut: they come back refused, and routing polls only.
        let user = &env.sandbox.users().admin.user;
        env.sandbox
            .primary()
            .sql(&format!("REVOKE REPLICATION SLAVE ON *.* FROM '{user}'@'%'"))
            .unwrap();
        env.sandbox.wait_caught_up(1, Duration::from_secs(10)).unwrap();
        env.sandbox.wait_caught_up(2, Duration::from_secs(10)).unwrap();
        for s in env.sandbox.servers() {
            s.sql(&format!(
                "SELECT GROUP_CONCAT(CONCAT('KILL ', id) SEPARATOR ';') INTO @k \
                 FROM information_schema.processlist WHERE user = '{user}' AND command = 'Binlog Dump'; \
                 EXECUTE IMMEDIATE IFNULL(@k, 'DO 0')"
            ))
            .unwrap();
        }
        wait_backends(&mut admin, Duration::from_secs(10), "every replica's stream refused", |b| {
            b.iter().filter(|s| s.0 != "primary").all(|s| {
                s.1 == "poll" && s.2.as_deref().is_some_and(|st| st.starts_with("refused"))
            })
        })
        .await;
        for v in 11..=15i64 {
            write(&mut c, v).await;
            let (read, _) = read_row(&mut c).await;
            assert_eq!(read, v, "read-your-writes while polling only");
        }
    });
}

/// `binlog_streaming = "auto"` (the default) with `eventual` as the default mode: the replicas
/// are not streamed (no dump thread on them, no events to parse) while no session uses a GTID
/// mode; the first read of a session that switches to `gtid` starts their streams.
#[test]
fn replicas_are_streamed_only_once_a_session_uses_a_gtid_mode() {
    let env = Env::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_lagless")),
        &EnvOptions {
            extra: "[consistency]\ndefault = \"eventual\"\n".into(),
            ..EnvOptions::default()
        },
    )
    .unwrap();
    rt().block_on(async {
        let mut c = Conn::from_url(env.url()).await.unwrap();
        let mut admin = Conn::from_url(env.url()).await.unwrap();
        let idle = |b: &[(String, String, Option<String>, Option<String>)]| {
            b.iter()
                .all(|s| s.1 == "poll" && s.2.as_deref().is_some_and(|st| st.starts_with("idle")))
        };
        wait_backends(
            &mut admin,
            Duration::from_secs(10),
            "every server idle (eventual: no GTID mode in use)",
            idle,
        )
        .await;
        c.query_drop("CREATE TABLE s (id INT PRIMARY KEY, v BIGINT)")
            .await
            .unwrap();
        write_then_read(&mut c).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let b = backends(&mut admin).await;
        assert!(
            idle(&b),
            "eventual reads and writes started no stream: {b:?}"
        );

        c.query_drop("SET @lagless_consistency = 'gtid'")
            .await
            .unwrap();
        write_then_read(&mut c).await;
        wait_backends(
            &mut admin,
            Duration::from_secs(5),
            "the replicas streaming once a session reads in gtid mode",
            |b| {
                b.iter().all(|s| {
                    if s.0 == "primary" {
                        s.2.as_deref().is_some_and(|st| st.starts_with("idle"))
                    } else {
                        s.2.as_deref() == Some("streaming")
                    }
                })
            },
        )
        .await;
    });
}

async fn write_then_read(c: &mut Conn) {
    c.query_drop("REPLACE INTO s VALUES (1, 1)").await.unwrap();
    let _: Option<i64> = c.query_first("SELECT v FROM s WHERE id = 1").await.unwrap();
}
