//! Runs the replication monitor (`lagless-topology`) for the configured clusters and feeds its
//! snapshots into the proxy's cluster state, which republishes the routing view.

use std::sync::Arc;

use lagless_topology::{HeartbeatConfig, MonitorConfig, MonitoredServer};
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
