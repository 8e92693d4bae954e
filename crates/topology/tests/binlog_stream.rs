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

/// Stops the streams and waits (at most 2 s) for their task to end.
async fn stop(shutdown: CancellationToken, task: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .unwrap()
        .unwrap();
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
        "every server streaming",
        |v| v.iter().all(|s| s.state == StreamState::Streaming),
    )
    .await;

    // Writes on the primary through a client connection of our own; each one's GTID from
    // @@last_gtid. Every replica's confirmed (executed) position must reach it quickly.
    let app = &sb.users().app;
    let primary = sb.primary();
    let conn_options = LoginOptions {
        addr: format!("{}:{}", primary.host(), primary.port()),
        user: app.user.clone(),
        password: app.password.clone(),
        database: Some("app".into()),
        capabilities: CLIENT_LONG_FLAG | CLIENT_DEPRECATE_EOF,
        charset: UTF8MB4_GENERAL_CI,
        connect_attrs: Vec::new(),
        connect_timeout: Duration::from_secs(2),
        max_packet: 1 << 24,
    };
    let mut conn = login(&conn_options).await.unwrap();
    let mut monitor = login(&LoginOptions {
        user: admin.user.clone(),
        password: admin.password.clone(),
        database: None,
        ..conn_options.clone()
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
        // The primary's stream: where the write ends in its binlog, which is where the binlog
        // ends now (nothing else writes); never its GTIDs as executed.
        let v = wait_for(
            &mut rx,
            Duration::from_secs(2),
            "the write's end in the primary's binlog",
            |v| {
                v[0].binlog
                    .as_ref()
                    .is_some_and(|b| b.through.contains(&gtid))
            },
        )
        .await;
        let status = monitor.query_rows("SHOW MASTER STATUS").await.unwrap();
        let row = &status.rows[0];
        let streamed = &v[0].binlog.as_ref().unwrap().pos;
        assert_eq!(
            (Some(streamed.file.clone()), Some(streamed.pos.to_string())),
            (row[0].clone(), row[1].clone()),
            "write {i}"
        );
        assert_eq!(v[0].executed, None);
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
    stop(shutdown, task).await;

    // Primaries' positions not wanted: the primary stays idle (no dump thread on it) until
    // they are.
    let shutdown = CancellationToken::new();
    let mut config = StreamConfig::new(servers(&sb), &admin.user, &admin.password);
    let demand = std::sync::Arc::new(lagless_topology::StreamDemand::new(false));
    config.primaries = demand.clone();
    let (mut rx, task) = spawn_streams(config, shutdown.clone());
    wait_for(
        &mut rx,
        Duration::from_secs(5),
        "the replicas streaming, the primary (writable) idle",
        |v| {
            v[1..].iter().all(|s| s.state == StreamState::Streaming)
                && matches!(v[0].state, StreamState::Idle(_))
                && v[0].binlog.is_none()
        },
    )
    .await;
    let asked = Instant::now();
    demand.want();
    wait_for(
        &mut rx,
        Duration::from_secs(3),
        "the primary streaming once its positions are wanted",
        |v| v[0].state == StreamState::Streaming,
    )
    .await;
    eprintln!(
        "primary streaming {:?} after it was wanted",
        asked.elapsed()
    );
    stop(shutdown, task).await;

    // Replicas' GTIDs not wanted (no session in a GTID mode yet): the replicas stay idle,
    // publishing nothing, until they are.
    let shutdown = CancellationToken::new();
    let mut config = StreamConfig::new(servers(&sb), &admin.user, &admin.password);
    let demand = std::sync::Arc::new(lagless_topology::StreamDemand::new(false));
    config.replicas = demand.clone();
    let (mut rx, task) = spawn_streams(config, shutdown.clone());
    wait_for(
        &mut rx,
        Duration::from_secs(5),
        "the primary streaming, the replicas idle",
        |v| {
            v[0].state == StreamState::Streaming
                && v[1..]
                    .iter()
                    .all(|s| matches!(s.state, StreamState::Idle(_)) && s.executed.is_none())
        },
    )
    .await;
    demand.want();
    wait_for(
        &mut rx,
        Duration::from_secs(3),
        "the replicas streaming once their GTIDs are wanted",
        |v| {
            v[1..]
                .iter()
                .all(|s| s.state == StreamState::Streaming && s.executed.is_some())
        },
    )
    .await;
    stop(shutdown, task).await;

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
    stop(shutdown, task).await;
}
