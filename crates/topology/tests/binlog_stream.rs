//! GTID streaming against real servers: one sandbox (primary + 2 replicas) per test.

use std::time::Duration;

use lagless_backend::{login, LoginOptions};
use lagless_protocol::consts::{CLIENT_DEPRECATE_EOF, CLIENT_LONG_FLAG, UTF8MB4_GENERAL_CI};
use lagless_routing::gtid::MariaPos;
use lagless_sandbox::Sandbox;
use lagless_topology::{spawn_streams, MonitoredServer, StreamConfig, StreamState, StreamedServer};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn servers(sb: &Sandbox) -> Vec<MonitoredServer> {
    sb.servers()
        .iter()
        .enumerate()
        .map(|(i, s)| MonitoredServer::new(0, i, s.name(), format!("{}:{}", s.host(), s.port())))
        .collect()
}

async fn wait_for(
    rx: &mut watch::Receiver<Vec<StreamedServer>>,
    within: Duration,
    what: &str,
    ok: impl Fn(&[StreamedServer]) -> bool,
) -> Vec<StreamedServer> {
    let deadline = Instant::now() + within;
    loop {
        let v = rx.borrow_and_update().clone();
        if ok(&v) {
            return v;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("streams ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {within:?}; last: {v:#?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_applied_gtid_arrives_within_milliseconds_and_a_refusal_falls_back() {
    let sb = blocking(|| Sandbox::for_test(2)).unwrap();
    let admin = &sb.users().admin;
    let shutdown = CancellationToken::new();
    let config = StreamConfig::new(servers(&sb), &admin.user, &admin.password);
    assert!((0x4c00_0000..=0x4cff_ffff).contains(&config.server_id));
    let (mut rx, task) = spawn_streams(config, shutdown.clone());
    wait_for(
        &mut rx,
        Duration::from_secs(5),
        "the replicas streaming, the primary (writable) idle",
        |v| {
            v[1..].iter().all(|s| s.state == StreamState::Streaming)
                && matches!(v[0].state, StreamState::Idle(_))
        },
    )
    .await;

    // Writes on the primary through a client connection of our own; each one's GTID from
    // @@last_gtid. Every replica's confirmed (executed) position must reach it quickly.
    let app = &sb.users().app;
    let primary = sb.primary();
    let mut conn = login(&LoginOptions {
        addr: format!("{}:{}", primary.host(), primary.port()),
        user: app.user.clone(),
        password: app.password.clone(),
        database: Some("app".into()),
        capabilities: CLIENT_LONG_FLAG | CLIENT_DEPRECATE_EOF,
        charset: UTF8MB4_GENERAL_CI,
        connect_attrs: Vec::new(),
        connect_timeout: Duration::from_secs(2),
        max_packet: 1 << 24,
    })
    .await
    .unwrap();
    conn.query_ok("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        conn.query_ok(&format!("INSERT INTO t VALUES ({i}, {i})"))
            .await
            .unwrap();
        let written = Instant::now();
        let gtid = conn.query_rows("SELECT @@last_gtid").await.unwrap();
        let gtid: MariaPos = gtid.scalar().unwrap().parse().unwrap();
        wait_for(
            &mut rx,
            Duration::from_secs(2),
            "the write's GTID confirmed on both replicas",
            |v| {
                v[1..]
                    .iter()
                    .all(|s| s.executed.as_ref().is_some_and(|e| e.contains(&gtid)))
            },
        )
        .await;
        worst = worst.max(written.elapsed());
    }
    eprintln!("slowest write-to-confirmed-on-both-replicas: {worst:?}");
    // The monitor polls every 250 ms by default; streaming must do far better, even on a
    // loaded machine.
    assert!(worst < Duration::from_millis(500), "{worst:?}");
    let events = rx.borrow()[1].gtid_events;
    assert!(events >= 20, "{events}");

    // A replica restarts: its stream is lost, then comes back.
    blocking(|| sb.replica(1).restart()).unwrap();
    wait_for(
        &mut rx,
        Duration::from_secs(10),
        "replica1 streaming again",
        |v| v[1].state == StreamState::Streaming,
    )
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();

    // The application account lacks REPLICATION SLAVE: every stream is refused, and says why.
    let shutdown = CancellationToken::new();
    let config = StreamConfig::new(servers(&sb), &app.user, &app.password);
    let (mut rx, task) = spawn_streams(config, shutdown.clone());
    let v = wait_for(
        &mut rx,
        Duration::from_secs(5),
        "the replicas' streams refused",
        |v| {
            v[1..]
                .iter()
                .all(|s| matches!(s.state, StreamState::Refused(_)))
        },
    )
    .await;
    let reason = v[1].state.reason().unwrap();
    assert!(reason.contains("REPLICATION SLAVE"), "{reason}");
    assert!(v.iter().all(|s| s.executed.is_none()));
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
}
