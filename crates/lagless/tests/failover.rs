//! Automatic failover end to end: a client inserts in autocommit through the proxy while the
//! primary is killed with SIGKILL. Measured: time from the kill to the first acknowledged write,
//! client-visible errors, and acknowledged writes missing on the new primary.

use std::time::{Duration, Instant};

use lagless_e2e::{rt, Env, EnvOptions};
use mysql_async::prelude::*;

#[test]
fn kill_9_of_the_primary_fails_over_with_at_most_the_in_flight_statement_lost() {
    let env = Env::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_lagless")),
        &EnvOptions {
            extra: "[failover]\nenabled = true\n\n[monitor]\ninterval_ms = 100\ntimeout_ms = 500\n"
                .into(),
            ..EnvOptions::default()
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
        println!("kill -9 → first acknowledged write: {took:?}; client errors: {errors:?}");
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
}
