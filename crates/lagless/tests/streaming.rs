//! GTID streaming end to end: with the monitor polling only every 5 s, a replica's applied
//! write reaches the routing view through its binlog stream within milliseconds, and the read
//! after it is served by a replica; when the monitor account loses REPLICATION SLAVE, the
//! streams are refused and routing falls back to polling (reads stay fresh).

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
            "the replicas streaming, the primary idle",
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
            c.exec_drop("UPDATE s SET v = ? WHERE id = 1", (v,))
                .await
                .unwrap();
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
            let (read, sid): (i64, u32) = c
                .query_first("SELECT v, @@server_id FROM s WHERE id = 1")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(read, v, "read-your-writes");
            if sid != primary_id {
                on_replica += 1;
            }
        }
        eprintln!("slowest write to executed on both replicas in the routing view: {slowest:?}; reads on replicas: {on_replica}/10");
        // The monitor polls every 5 s: only the streams can explain this.
        assert!(slowest < Duration::from_millis(500), "{slowest:?}");
        assert_eq!(on_replica, 10, "known applied: every read on a replica");

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
            c.exec_drop("UPDATE s SET v = ? WHERE id = 1", (v,))
                .await
                .unwrap();
            let (read, _): (i64, u32) = c
                .query_first("SELECT v, @@server_id FROM s WHERE id = 1")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(read, v, "read-your-writes while polling only");
        }
    });
}
