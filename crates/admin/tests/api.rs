//! Every endpoint through the router, without a socket.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{context, encode};
use lagless_admin::router;
use lagless_proxy::ProxyContext;
use lagless_routing::ServerRef;
use lagless_topology::{
    BinlogPosition, MonitoredServer, ReplicaStatus, ServerObservation, Snapshot, ThreadState,
};
use serde_json::{json, Value};
use tokio::time::Instant;
use tower::ServiceExt;

async fn call(
    ctx: &std::sync::Arc<ProxyContext>,
    method: Method,
    uri: &str,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let resp = router(ctx.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "{uri}"
    );
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, value)
}

async fn get(ctx: &std::sync::Arc<ProxyContext>, uri: &str) -> (StatusCode, Value) {
    call(ctx, Method::GET, uri).await
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn sorted(mut k: Vec<&str>) -> Vec<&str> {
    k.sort_unstable();
    k
}

#[tokio::test]
async fn health_is_ok() {
    let ctx = context();
    assert_eq!(
        get(&ctx, "/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn backends_list_every_server_with_health_and_counters() {
    let ctx = context();
    let (status, v) = get(&ctx, "/backends").await;
    assert_eq!(status, StatusCode::OK);
    let servers = v["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 5);
    assert_eq!(
        keys(&servers[0]),
        sorted(vec![
            "cluster",
            "name",
            "address",
            "role",
            "weight",
            "health",
            "sessions",
            "reads",
            "writes",
            "other",
            "failures",
            "gtid_source",
            "binlog_stream",
            "binlog_stream_error",
            "executed_gtid",
            "streamed_binlog_pos"
        ])
    );
    assert_eq!(
        servers[0],
        json!({"cluster": "main", "name": "primary", "address": "127.0.0.1:1",
               "role": "primary", "weight": 1, "health": "up", "sessions": 0,
               "reads": 0, "writes": 0, "other": 0, "failures": 0,
               "gtid_source": "poll", "binlog_stream": null, "binlog_stream_error": null,
               "executed_gtid": null, "streamed_binlog_pos": null})
    );
    assert_eq!(servers[1]["role"], "replica");
    assert_eq!(servers[4]["cluster"], "analytics");
    assert_eq!(servers[4]["name"], "a-replica");

    // A failed replica is set aside; counted statements show.
    let r1 = ServerRef {
        cluster: 0,
        server: 1,
    };
    ctx.cluster
        .mark_down(r1, Duration::from_secs(60), Instant::now());
    ctx.cluster
        .count(r1, lagless_proxy::cluster_state::Counted::Read);
    ctx.cluster
        .count(r1, lagless_proxy::cluster_state::Counted::Read);
    ctx.cluster.sticky(r1, true);
    let (_, v) = get(&ctx, "/backends").await;
    let r1 = &v["servers"][1];
    assert_eq!(r1["health"], "down");
    assert_eq!(r1["failures"], 1);
    assert_eq!(r1["reads"], 2);
    assert_eq!(r1["sessions"], 1);
    assert_eq!(v["servers"][2]["health"], "up");
}

#[tokio::test]
async fn status_has_counters_and_config() {
    let ctx = context();
    ctx.stats.commands.fetch_add(7, Ordering::Relaxed);
    ctx.stats.reads_behind.fetch_add(2, Ordering::Relaxed);
    ctx.ha.push(lagless_proxy::ha_history::HaRecord {
        at_ms: 1234,
        cluster: "main".into(),
        kind: "quarantine",
        server: "primary".into(),
        summary: "fenced".into(),
        total_ms: Some(2.5),
        possibly_lost: vec!["0-1-7..0-1-9".into()],
        steps: vec![lagless_proxy::ha_history::HaStep {
            server: "primary".into(),
            step: "check history".into(),
            statement: None,
            at_ms: 0.5,
            took_ms: 1.0,
            outcome: "done".into(),
        }],
    });
    let (status, v) = get(&ctx, "/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&v),
        sorted(vec![
            "version",
            "server_version",
            "uptime_ms",
            "counters",
            "config",
            "ha_events"
        ])
    );
    assert_eq!(
        v["ha_events"],
        json!([{"at_ms": 1234, "cluster": "main", "kind": "quarantine", "server": "primary",
                "summary": "fenced", "total_ms": 2.5, "possibly_lost": ["0-1-7..0-1-9"],
                "steps": [{"server": "primary", "step": "check history", "statement": null,
                           "at_ms": 0.5, "took_ms": 1.0, "outcome": "done"}]}])
    );
    assert_eq!(v["server_version"], "10.11.0-MariaDB-lagless");
    assert!(v["uptime_ms"].is_u64());
    assert_eq!(
        v["counters"],
        json!({"connections_active": 0, "connections_accepted": 0, "commands": 7,
               "auth_failures": 0, "backend_errors": 0, "unknown_statements": 0,
               "hints_ignored": 0, "read_retries": 0, "reads_behind": 2,
               "set_names_answered": 0, "optimistic_moved": 0, "optimistic_differed": 0,
               "optimistic_unreplayable": 0, "transactions_resumed": 0,
               "transactions_not_resumed": 0})
    );
    assert_eq!(
        v["config"],
        json!({"listener_address": "127.0.0.1:6033", "listener_socket": null,
               "max_connections": v["config"]["max_connections"],
               "consistency_default": "gtid", "max_replica_lag_s": null, "balance": "random",
               "primary_in_read_pool": false, "optimistic_transactions": false,
               "transaction_replay": false, "monitor_enabled": true})
    );
    assert!(v["config"]["max_connections"].is_u64());
}

fn explain_uri(sql: &str, extra: &str) -> String {
    format!("/explain?sql={}{extra}", encode(sql))
}

#[tokio::test]
async fn explain_a_write_goes_to_the_primary_and_a_read_to_a_replica() {
    let ctx = context();
    let (status, v) = get(&ctx, &explain_uri("INSERT INTO t VALUES (1)", "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        keys(&v),
        sorted(vec!["class", "target", "server", "reason"])
    );
    assert_eq!(v["target"], "primary");
    assert_eq!(v["server"], "primary");
    assert!(!v["class"].as_str().unwrap().is_empty());
    assert!(!v["reason"].as_str().unwrap().is_empty());

    let (status, v) = get(&ctx, &explain_uri("SELECT * FROM t WHERE id = 1", "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["target"], "replica");
    assert!(["replica1", "replica2"].contains(&v["server"].as_str().unwrap()));
    assert_eq!(v["reason"], "read: the session's replica");
}

#[tokio::test]
async fn explain_follows_the_session_parameters() {
    let ctx = context();
    let select = "SELECT 1";
    let (_, v) = get(&ctx, &explain_uri(select, "&in_transaction=true")).await;
    assert_eq!(v["target"], "primary");
    assert!(v["reason"].as_str().unwrap().contains("transaction"), "{v}");

    let (_, v) = get(&ctx, &explain_uri(select, "&in_transaction=false")).await;
    assert_eq!(v["target"], "replica");

    // The user's route and the user's consistency mode.
    let (_, v) = get(&ctx, &explain_uri(select, "&user=boss")).await;
    assert_eq!(v["target"], "primary");
    let (_, v) = get(&ctx, &explain_uri(select, "&user=careful")).await;
    assert_eq!(v["target"], "primary");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("consistency primary"),
        "{v}"
    );

    // A rule sending reads of some tables to another cluster; an empty schema is none.
    let (_, v) = get(&ctx, &explain_uri("SELECT * FROM events_2024", "&schema=")).await;
    assert_eq!(v["target"], "cluster:analytics", "{v}");
    assert_eq!(v["server"], "a-replica");
    assert_eq!(v["reason"], "rule \"events\"");
}

#[tokio::test]
async fn explain_reads_the_live_view() {
    let ctx = context();
    for server in [1, 2] {
        ctx.cluster.mark_down(
            ServerRef { cluster: 0, server },
            Duration::from_secs(60),
            Instant::now(),
        );
    }
    let (_, v) = get(&ctx, &explain_uri("SELECT 1", "")).await;
    assert_eq!(v["target"], "primary");
    assert_eq!(v["reason"], "read, but no healthy replica: primary");
}

#[tokio::test]
async fn bad_explain_parameters_are_400_with_a_message() {
    let ctx = context();
    for (uri, needle) in [
        ("/explain".to_string(), "sql"),
        ("/explain?user=app".to_string(), "sql"),
        (
            explain_uri("SELECT 1", "&in_transaction=maybe"),
            "in_transaction",
        ),
        (explain_uri("SELECT 1", "&in_trx=true"), "in_trx"),
        ("/explain?sql=".to_string(), "empty"),
        ("/explain?sql=%20%20".to_string(), "empty"),
    ] {
        let (status, v) = get(&ctx, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(keys(&v), vec!["error"], "{uri}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{uri}: {msg}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let ctx = context();
    let (status, v) = get(&ctx, "/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("/nope"), "{v}");
    let (status, _) = get(&ctx, "/health/extra").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, v) = call(&ctx, Method::POST, "/health").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(v["error"].as_str().unwrap().contains("GET"), "{v}");
}

fn observation(cluster: usize, server: usize, name: &str, now: Instant) -> ServerObservation {
    ServerObservation::blank(
        &MonitoredServer::new(cluster, server, name, format!("127.0.0.1:{}", server + 1)),
        now,
    )
}

fn replica_status() -> ReplicaStatus {
    ReplicaStatus {
        io_running: ThreadState::Yes,
        master_host: "127.0.0.1".into(),
        master_port: 1,
        master_log_file: "bin.000002".into(),
        read_master_log_pos: 900,
        relay_master_log_file: "bin.000002".into(),
        exec_master_log_pos: 700,
        gtid_io_pos: "0-1-12".into(),
        using_gtid: "Slave_Pos".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn replication_shows_the_monitors_view() {
    let ctx = context();
    let (status, v) = get(&ctx, "/replication").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"monitor_enabled": true, "servers": []}));

    let now = Instant::now();
    let mut primary = observation(0, 0, "primary", now);
    primary.reachable = true;
    primary.read_only = Some(false);
    primary.server_id = Some(1);
    primary.flavour = Some(lagless_topology::Flavour::MariaDb);
    primary.gtid_current_pos = Some("0-1-12".into());
    primary.gtid_binlog_pos = Some("0-1-12".into());
    primary.binlog = Some(BinlogPosition {
        file: "bin.000002".into(),
        pos: 900,
    });
    primary.semi_sync.master_status = Some(true);
    primary.semi_sync.master_clients = Some(1);
    primary.rtt = Some(Duration::from_micros(250));
    let mut replica = observation(0, 1, "replica1", now);
    replica.reachable = true;
    replica.read_only = Some(true);
    replica.gtid_current_pos = Some("0-1-10".into());
    replica.gtid_slave_pos = Some("0-1-10".into());
    replica.replication = Some(replica_status());
    replica.heartbeat_lag = Some(Duration::from_millis(1500));
    replica.semi_sync.slave_status = Some(false);
    let mut down = observation(0, 2, "replica2", now);
    down.error = Some("connect to 127.0.0.1:3: refused".into());
    down.consecutive_failures = 3;
    // Published out of order: the answer is in configuration order.
    ctx.cluster.apply_monitor(&Snapshot {
        servers: vec![down, replica, primary],
        taken_at: now,
        round: 1,
    });

    let (_, v) = get(&ctx, "/replication").await;
    let servers = v["servers"].as_array().unwrap();
    let names: Vec<&str> = servers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["primary", "replica1", "replica2"]);
    let (p, r, d) = (&servers[0], &servers[1], &servers[2]);
    assert_eq!(
        keys(p),
        sorted(vec![
            "cluster",
            "name",
            "address",
            "reachable",
            "role",
            "read_only",
            "server_id",
            "flavour",
            "version",
            "io_running",
            "sql_running",
            "seconds_behind_master",
            "sql_delay_s",
            "heartbeat_lag_ms",
            "gtid_current_pos",
            "gtid_slave_pos",
            "gtid_binlog_pos",
            "gtid_io_pos",
            "read_pos",
            "exec_pos",
            "binlog_pos",
            "semi_sync",
            "last_io_error",
            "last_sql_error",
            "rtt_us",
            "error",
            "consecutive_failures",
            "observed_ms_ago",
        ])
    );
    assert_eq!(p["cluster"], "main");
    assert_eq!(p["role"], "primary");
    assert_eq!(p["reachable"], true);
    assert_eq!(p["flavour"], "mariadb");
    assert_eq!(p["binlog_pos"], json!({"file": "bin.000002", "pos": 900}));
    assert_eq!(
        p["semi_sync"],
        json!({"master_status": true, "master_clients": 1, "slave_status": null})
    );
    assert_eq!(p["rtt_us"], 250);
    assert_eq!(p["io_running"], Value::Null);
    assert_eq!(p["exec_pos"], Value::Null);

    assert_eq!(r["role"], "replica");
    assert_eq!(r["read_only"], true);
    assert_eq!(r["io_running"], "Yes");
    assert_eq!(r["sql_running"], "No");
    assert_eq!(r["seconds_behind_master"], Value::Null);
    assert_eq!(r["heartbeat_lag_ms"], 1500);
    assert_eq!(r["gtid_slave_pos"], "0-1-10");
    assert_eq!(r["gtid_io_pos"], "0-1-12");
    assert_eq!(r["read_pos"], json!({"file": "bin.000002", "pos": 900}));
    assert_eq!(r["exec_pos"], json!({"file": "bin.000002", "pos": 700}));
    assert_eq!(r["sql_delay_s"], 0);
    assert_eq!(r["last_sql_error"], Value::Null);
    assert_eq!(r["consecutive_failures"], 0);

    assert_eq!(d["role"], "unknown");
    assert_eq!(d["reachable"], false);
    assert_eq!(d["error"], "connect to 127.0.0.1:3: refused");
    assert_eq!(d["consecutive_failures"], 3);
    assert!(d["observed_ms_ago"].is_u64());

    // The unreachable server is down for routing too.
    let (_, b) = get(&ctx, "/backends").await;
    assert_eq!(b["servers"][1]["health"], "up");
    assert_eq!(b["servers"][2]["health"], "down");
    let (_, e) = get(&ctx, &explain_uri("SELECT 1", "&user=app")).await;
    assert_eq!(e["server"], "replica1");
}
