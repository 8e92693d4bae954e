//! Automatic failover end to end: a client inserts in autocommit through the proxy while the
//! primary is killed with SIGKILL. Measured: time from the kill to the first acknowledged write,
//! client-visible errors, and acknowledged writes missing on the new primary.

use std::time::{Duration, Instant};

use lagless_e2e::{rt, Env, EnvOptions};
use mysql_async::prelude::*;

#[test]
fn kill_9_of_the_primary_fails_over_with_at_most_the_in_flight_statement_lost() {
    kill_9_under_insert_load(false);
}

/// With semi-synchronous replication (AFTER_SYNC) an acknowledged insert is in a replica's relay
/// log before the client hears of it, and the failover promotes the replica that received the
/// most: no acknowledged insert can be lost.
#[test]
fn kill_9_with_semi_sync_loses_no_acknowledged_write() {
    kill_9_under_insert_load(true);
}

fn kill_9_under_insert_load(semi_sync: bool) {
    let env = Env::start_with(
        BIN.as_ref(),
        &EnvOptions {
            semi_sync,
            ..failover_options()
        },
    )
    .unwrap();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE fo (id INT PRIMARY KEY)")
            .await
            .unwrap();
        // Let the monitor see a healthy, replicating cluster before the fault.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut acked = Vec::new();
        let mut errors = Vec::new();
        let mut killed_at = None;
        let mut first_after_kill = None;
        let start = Instant::now();
        for id in 1..100_000 {
            if killed_at.is_none() && id == 200 {
                env.sandbox.primary().kill().unwrap();
                killed_at = Some(Instant::now());
            }
            match c.exec_drop("INSERT INTO fo VALUES (?)", (id,)).await {
                Ok(()) => {
                    acked.push(id);
                    if let (Some(k), None) = (killed_at, first_after_kill) {
                        first_after_kill = Some(k.elapsed());
                    }
                }
                Err(e) => errors.push(format!("{id}: {e}")),
            }
            if first_after_kill.is_some() && acked.len() > 300 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no write acknowledged after the kill; errors: {errors:?}"
            );
        }
        let took = first_after_kill.expect("a write after the kill");
        println!("kill -9 (semi-sync: {semi_sync}) → first acknowledged write: {took:?}; client errors: {errors:?}");
        assert!(
            errors.len() <= 1,
            "only the statement in flight may fail: {errors:?}"
        );
        // Every acknowledged write is on the new primary.
        let n: u64 = c
            .query_first("/* lagless:primary */ SELECT COUNT(*) FROM fo")
            .await
            .unwrap()
            .unwrap();
        let ids: Vec<i32> = c
            .query("/* lagless:primary */ SELECT id FROM fo ORDER BY id")
            .await
            .unwrap();
        let missing: Vec<_> = acked
            .iter()
            .filter(|id| ids.binary_search(id).is_err())
            .collect();
        println!(
            "acknowledged {}, on the new primary {n}, missing {}",
            acked.len(),
            missing.len()
        );
        assert!(
            missing.is_empty(),
            "acknowledged writes lost (asynchronous replication): {missing:?}"
        );
        let sid: u32 = c
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(sid, 1, "writes go to a promoted replica");
        assert!(took < Duration::from_secs(5), "failover took {took:?}");
    });
    // The old primary comes back: it is fenced (read-only), and rejoins as a replica when its
    // history is a prefix of the new primary's (else it stays quarantined). Either way no
    // client statement reaches it as a primary.
    let old = env.sandbox.primary();
    old.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if old.scalar("SELECT @@read_only").ok().as_deref() == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "the old primary was not fenced");
        std::thread::sleep(Duration::from_millis(100));
    }
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.exec_drop("INSERT INTO fo VALUES (?)", (1_000_000,))
            .await
            .unwrap();
        let sid: u32 = c
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(sid, 1, "the fenced old primary is not the primary");
    });
}

const BIN: &str = env!("CARGO_BIN_EXE_lagless");

/// Failover on, with a fast monitor.
fn failover_options() -> EnvOptions {
    EnvOptions {
        extra: "[failover]\nenabled = true\n\n[monitor]\ninterval_ms = 100\ntimeout_ms = 500\n"
            .into(),
        ..EnvOptions::default()
    }
}

fn failover_env() -> Env {
    Env::start_with(BIN.as_ref(), &failover_options()).unwrap()
}

#[test]
fn a_hung_primary_is_failed_over() {
    let env = failover_env();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE hung (id INT PRIMARY KEY)").await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        env.sandbox.primary().pause().unwrap();
        let paused = Instant::now();
        // The write in flight on the hung primary ends with an error once a replica is promoted
        // (its outcome is unknown); the same connection's next write goes to the new primary.
        let r = tokio::time::timeout(Duration::from_secs(20), c.exec_drop("INSERT INTO hung VALUES (1)", ())).await;
        let ended = paused.elapsed();
        let r = r.expect("the statement on the hung primary did not end");
        let deadline = Instant::now() + Duration::from_secs(15);
        let acked = loop {
            match c.exec_drop("INSERT INTO hung VALUES (2)", ()).await {
                Ok(()) => break paused.elapsed(),
                Err(e) => {
                    assert!(Instant::now() < deadline, "no write accepted after the primary hung: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        println!("SIGSTOP → the write in flight ended after {ended:?} ({r:?}); next write acknowledged after {acked:?}");
        if let Err(e) = r {
            assert!(e.to_string().contains("outcome is unknown"), "{e}");
        }
        let sid: u32 = c.query_first("/* lagless:primary */ SELECT @@server_id").await.unwrap().unwrap();
        assert_ne!(sid, 1);
    });
    env.sandbox.primary().resume().unwrap();
}

#[test]
fn a_transaction_open_on_the_dead_primary_is_lost_cleanly() {
    let env = failover_env();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE trx_lost (id INT PRIMARY KEY)")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO trx_lost VALUES (1)")
            .await
            .unwrap();
        env.sandbox.primary().kill().unwrap();
        let err = c
            .query_drop("INSERT INTO trx_lost VALUES (2)")
            .await
            .expect_err("the transaction's server died");
        assert!(err.to_string().contains("2013"), "{err}");
        // Until the client ends it, the lost transaction refuses statements...
        let err = c
            .query_drop("INSERT INTO trx_lost VALUES (3)")
            .await
            .expect_err("transaction lost");
        assert!(err.to_string().contains("ROLLBACK to continue"), "{err}");
        // ...ROLLBACK ends it, and the session goes on against the new primary.
        c.query_drop("ROLLBACK").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c
            .query_drop("INSERT INTO trx_lost VALUES (4)")
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "no write after the failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ids: Vec<i32> = c
            .query("/* lagless:primary */ SELECT id FROM trx_lost ORDER BY id")
            .await
            .unwrap();
        assert_eq!(
            ids,
            vec![4],
            "nothing of the lost transaction was applied piecemeal"
        );
    });
}

#[test]
fn switchover_under_write_load_loses_nothing_and_shows_no_error() {
    let env = failover_env();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE sw (id INT PRIMARY KEY)")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            let url = env.url();
            tokio::spawn(async move {
                let mut c = mysql_async::Conn::from_url(url).await.unwrap();
                let (mut acked, mut errors) = (Vec::new(), Vec::new());
                let mut id = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    id += 1;
                    match c.exec_drop("INSERT INTO sw VALUES (?)", (id,)).await {
                        Ok(()) => acked.push(id),
                        Err(e) => errors.push(format!("{id}: {e}")),
                    }
                }
                (acked, errors)
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let admin = format!("127.0.0.1:{}", env.admin_port);
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_lagless"))
                .args(["switchover", "--to", "replica2", "--admin", &admin])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (acked, errors) = writer.await.unwrap();
        println!("{report}");
        println!(
            "acknowledged {} inserts, client errors: {errors:?}",
            acked.len()
        );
        assert!(errors.is_empty(), "{errors:?}");
        let ids: Vec<i32> = c
            .query("/* lagless:primary */ SELECT id FROM sw ORDER BY id")
            .await
            .unwrap();
        let missing: Vec<_> = acked
            .iter()
            .filter(|id| ids.binary_search(id).is_err())
            .collect();
        assert!(missing.is_empty(), "lost: {missing:?}");
        let sid: u32 = c
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sid, 3, "replica2 is the primary");
    });
}

#[test]
fn two_proxies_promote_one_primary_and_both_route_to_it() {
    let opts = failover_options();
    let env = Env::start_with(BIN.as_ref(), &opts).unwrap();
    let (second, _) = env.another_proxy(BIN.as_ref(), &opts).unwrap();
    let url2 = format!(
        "mysql://app:lagless@127.0.0.1:{}/app?prefer_socket=false",
        second.port
    );
    rt().block_on(async {
        let mut a = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let mut b = mysql_async::Conn::from_url(url2.as_str()).await.unwrap();
        a.query_drop("CREATE TABLE two (id INT PRIMARY KEY)")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        env.sandbox.primary().kill().unwrap();
        // Both keep writing through their own proxy.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut id = 0;
        for c in [&mut a, &mut b] {
            loop {
                id += 1;
                if c.exec_drop("INSERT INTO two VALUES (?)", (id,))
                    .await
                    .is_ok()
                {
                    break;
                }
                assert!(Instant::now() < deadline, "no write after the failover");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let pa: u32 = a
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        let pb: u32 = b
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pa, pb, "both proxies route writes to the same new primary");
        assert_ne!(pa, 1);
        // Exactly one server is writable, and the other replica follows it.
        let writable: Vec<u32> = env
            .sandbox
            .replicas()
            .iter()
            .filter(|r| r.scalar("SELECT @@read_only").ok().as_deref() == Some("0"))
            .map(|r| r.server_id())
            .collect();
        assert_eq!(writable, vec![pa], "one promotion");
    });
    drop(second);
}
