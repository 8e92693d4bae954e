//! Runs the replication monitor (`lagless-topology`) for the configured clusters and feeds its
//! snapshots into the proxy's cluster state, which republishes the routing view.

use std::sync::Arc;

use lagless_topology::{HeartbeatConfig, MonitorConfig, MonitoredServer, StreamConfig};
use tokio_util::sync::CancellationToken;

use crate::context::ProxyContext;

/// Starts one monitor per cluster (each cluster has its own monitor account) and a task that
/// applies their snapshots. Returns immediately; everything stops with `shutdown`.
pub fn start(ctx: Arc<ProxyContext>, shutdown: CancellationToken) {
    let m = &ctx.config.monitor;
    if !m.enabled {
        return;
    }
    for (ci, cluster) in ctx.config.clusters.iter().enumerate() {
        let standbys: Vec<String> = cluster
            .servers
            .iter()
            .filter(|s| s.role == lagless_config::Role::Standby)
            .map(|s| s.address.clone())
            .collect();
        let servers = cluster
            .servers
            .iter()
            .enumerate()
            .map(|(si, s)| {
                let mut m = MonitoredServer::new(ci, si, s.name.clone(), s.address.clone());
                m.socket.clone_from(&s.socket);
                m.standbys.clone_from(&standbys);
                m
            })
            .collect();
        let mut config = MonitorConfig::new(
            servers,
            cluster.monitor_user.clone(),
            cluster.monitor_password.clone(),
        );
        config.interval = m.interval;
        config.timeout = m.timeout;
        config.connect_timeout = ctx.config.timeouts.connect;
        config.probe_now = Some(ctx.cluster.probe_now[ci].clone());
        config.heartbeat = m.heartbeat_schema.as_ref().map(|schema| HeartbeatConfig {
            schema: schema.clone(),
        });
        if let Err(e) = config.validate() {
            tracing::error!(cluster = %cluster.name, error = %e, "monitor not started");
            continue;
        }
        // `None` with `binlog_streaming = false`: no streams at all.
        if let Some(replicas) = ctx.cluster.replica_gtids.clone() {
            start_streams(&ctx, ci, &config, replicas, &shutdown);
        }
        let (mut rx, _task) = lagless_topology::spawn(config, shutdown.clone());
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let mut driver = ctx
            .config
            .failover
            .enabled
            .then(|| crate::failover_driver::FailoverDriver::new(ctx.clone(), ci));
        tokio::spawn(async move {
            loop {
                let snapshot = rx.borrow_and_update().clone();
                ctx.cluster.apply_monitor(&snapshot);
                if let Some(d) = driver.as_mut() {
                    d.observe(snapshot);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = rx.changed() => if changed.is_err() { return },
                }
            }
        });
    }
}

/// One replication server id for all of this proxy's binlog streams (configured, or random).
fn stream_server_id(configured: Option<u32>) -> u32 {
    static RANDOM: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    configured
        .unwrap_or_else(|| *RANDOM.get_or_init(lagless_topology::binlog_stream::random_server_id))
}

/// GTID streaming for one cluster: each server's binlog, read as a replication client, moves
/// its executed GTIDs forward in the routing view between polls. `LAGLESS_BINLOG_UNCONFIRMED=1`
/// (for measurement only) publishes streamed GTIDs without confirming they are committed.
fn start_streams(
    ctx: &Arc<ProxyContext>,
    cluster: usize,
    monitor: &MonitorConfig,
    replicas: Arc<lagless_topology::StreamDemand>,
    shutdown: &CancellationToken,
) {
    let mut config = StreamConfig::new(
        monitor.servers.clone(),
        monitor.user.clone(),
        monitor.password.clone(),
    );
    config.connect_timeout = monitor.connect_timeout;
    config.server_id = stream_server_id(ctx.config.monitor.binlog_server_id);
    config.primaries = ctx.cluster.primary_positions.clone().unwrap_or_else(|| {
        std::sync::Arc::new(lagless_topology::StreamDemand::new(false)) // "off": never wanted
    });
    config.replicas = replicas;
    config.confirm = std::env::var_os("LAGLESS_BINLOG_UNCONFIRMED").is_none_or(|v| v != "1");
    if !config.confirm {
        tracing::warn!(cluster, "LAGLESS_BINLOG_UNCONFIRMED=1: streamed GTIDs are trusted before they are confirmed committed (measurement only)");
    }
    let (mut rx, _task) = lagless_topology::spawn_streams(config, shutdown.clone());
    let ctx = ctx.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let streams = rx.borrow_and_update().clone();
            ctx.cluster.apply_streams(&streams);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    });
}
