//! Primary/standby: replica1 is configured as the primary's standby, with dual-primary
//! replication (each replicates from the other, only the primary writable). The standby gets
//! no traffic; when the primary dies, the failover makes it the writer.

use std::collections::HashSet;
use std::time::Duration;

use lagless_e2e::faults::{the_primary, wait_for};
use lagless_e2e::{admin_request, rt, Env, EnvOptions};
use mysql_async::prelude::*;

#[test]
fn the_standby_gets_no_traffic_until_a_failover_makes_it_the_writer() {
    let env = Env::start_with(
        env!("CARGO_BIN_EXE_lagless").as_ref(),
        &EnvOptions {
            standby: true,
            ..EnvOptions::failover()
        },
    )
    .unwrap();
    let primary = env.sandbox.primary();
    let standby = env.sandbox.replica(1);
    let repl = &env.sandbox.users().replication;
    // The link back: the primary replicates from its standby.
    primary
        .sql(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='{}', \
             MASTER_PASSWORD='{}', MASTER_USE_GTID=current_pos; START SLAVE",
            standby.port(),
            repl.user,
            repl.password
        ))
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the primary replicates from the standby",
        || {
            primary
                .query("SHOW SLAVE STATUS")
                .ok()
                .and_then(|rows| rows.first().cloned())
                .is_some_and(|r| r.get("Slave_IO_Running").map(String::as_str) == Some("Yes"))
        },
    )
    .unwrap();

    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("CREATE TABLE IF NOT EXISTS sb (id INT PRIMARY KEY, sid INT)")
            .await
            .unwrap();
        // Reads of many sessions: on replica2 only, never on the standby.
        let mut seen = HashSet::new();
        for _ in 0..30 {
            let mut s = mysql_async::Conn::from_url(env.url()).await.unwrap();
            let sid: u32 = s.query_first("SELECT @@server_id").await.unwrap().unwrap();
            seen.insert(sid);
            s.disconnect().await.unwrap();
        }
        assert_eq!(seen, HashSet::from([3]), "reads ran on servers {seen:?}");
        // The writable primary replicating from its standby is still the primary: a second
        // later, no failover happened and writes run there.
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.query_drop("REPLACE INTO sb VALUES (1, @@server_id)")
            .await
            .unwrap();
        let sid: u32 = c
            .query_first("SELECT sid FROM sb WHERE id = 1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sid, 1, "writes on the primary");
        let (_, status) = admin_request(env.admin_port, "GET", "/status");
        assert_eq!(status["ha_events"], serde_json::json!([]), "no failover");
        // The monitor sees a primary (its link back from the standby does not make it a
        // replica) and the standby as its replica.
        let (_, repl) = admin_request(env.admin_port, "GET", "/replication");
        let role = |name: &str| {
            repl["servers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| s["role"].clone())
        };
        assert_eq!(role("primary"), Some("primary".into()), "{repl}");
        assert_eq!(role("replica1"), Some("replica".into()), "{repl}");

        primary.kill().unwrap();
        let mut w = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while w
            .query_drop("REPLACE INTO sb VALUES (2, @@server_id)")
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no write after the failover"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (sid,): (u32,) = w
            .query_first("SELECT sid FROM sb WHERE id = 2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sid, standby.server_id(), "the standby became the writer");
        assert_eq!(the_primary(&env.sandbox).unwrap().name(), "replica1");
        let (_, status) = admin_request(env.admin_port, "GET", "/status");
        let events = status["ha_events"].as_array().unwrap();
        assert_eq!(events[0]["kind"], "failover", "{events:?}");
        assert_eq!(events[0]["server"], "replica1");
        assert!(!events[0]["steps"].as_array().unwrap().is_empty());
        // Reads go on from replica2, now replicating from the standby.
        let mut r = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let sid: u32 = r.query_first("SELECT @@server_id").await.unwrap().unwrap();
        assert_eq!(sid, 3);
    });
}
