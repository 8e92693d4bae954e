//! The admin HTTP interface of Lagless: health, servers, replication, counters and routing
//! explanations as JSON, for scripts, load balancers and humans with `curl | jq`.
//!
//! It serves a running proxy's shared [`ProxyContext`] and only reads it: no endpoint changes
//! routing, opens a server connection or waits on one. Bind it to a loopback or management
//! address: it has no authentication.
//!
//! # Endpoints (a stable contract)
//!
//! Every answer is a JSON object with `Content-Type: application/json`. Fields are only ever
//! added, never renamed or removed; `null` means "not known" (never probed, not applicable).
//!
//! - `GET /health` → `200 {"status": "ok"}` while the process serves requests.
//! - `GET /backends` → `{"servers": [{"cluster", "name", "address", "role", "weight",
//!   "health", "sessions", "reads", "writes", "other", "failures"}]}`, one entry per configured
//!   server in configuration order: `role` is the configured one (`"primary"`/`"replica"`),
//!   `health` is `"up"` or `"down"` as routing sees it now (set aside after a failure, or found
//!   unreachable by the monitor); the counters are those of `SHOW LAGLESS BACKENDS`.
//! - `GET /replication` → `{"monitor_enabled": bool, "servers": [...]}`: the replication
//!   monitor's latest observation of each server (empty before its first round), ordered by
//!   cluster then configuration order. Each entry: `cluster`, `name`, `address`, `reachable`,
//!   `role` (observed: `"primary"` when reachable, writable and replicating from nobody,
//!   `"replica"` when it has a replication connection, else `"unknown"`), `read_only`,
//!   `server_id`, `flavour` (`"mariadb"`/`"mysql"`), `version`, `io_running`, `sql_running`
//!   (the server's words: `"Yes"`, `"No"`, `"Connecting"`, ...), `seconds_behind_master`,
//!   `sql_delay_s`, `heartbeat_lag_ms`, `gtid_current_pos`, `gtid_slave_pos`,
//!   `gtid_binlog_pos`, `gtid_io_pos`, `read_pos`, `exec_pos` (the primary's binlog
//!   coordinates received and applied, `{"file", "pos"}`), `binlog_pos` (its own),
//!   `semi_sync` (`{"master_status", "master_clients", "slave_status"}`), `last_io_error`,
//!   `last_sql_error`, `rtt_us`, `error`, `consecutive_failures`, `observed_ms_ago`.
//! - `GET /status` → `{"version", "server_version", "uptime_ms", "counters": {
//!   "connections_active", "connections_accepted", "commands", "auth_failures",
//!   "backend_errors", "unknown_statements", "hints_ignored", "read_retries", "reads_behind",
//!   "set_names_answered", "optimistic_moved", "optimistic_differed",
//!   "optimistic_unreplayable", "transactions_resumed", "transactions_not_resumed"},
//!   "config": {"listener_address", "listener_socket", "max_connections", "consistency_default",
//!   "max_replica_lag_s", "balance", "primary_in_read_pool", "optimistic_transactions",
//!   "transaction_replay", "monitor_enabled"},
//!   "ha_events": [{"at_ms", "cluster", "kind", "server", "summary", "total_ms",
//!   "possibly_lost", "steps": [{"server", "step", "statement", "at_ms", "took_ms",
//!   "outcome"}]}]}`: failovers, switchovers, rejoins and quarantines (with the GTID ranges
//!   the old primary has and the new one lacks), oldest first.
//! - `GET /explain?sql=SQL[&in_transaction=true|false][&user=NAME][&schema=NAME]` →
//!   `{"class", "target", "server", "reason"}`, the shape of `lagless explain --json`: where a
//!   new session of `user` (default `app`) would send the statement now, against the live
//!   routing view. See [`explain::explain`].
//!
//! Errors: an unknown path is `404`, a method other than GET (or HEAD) `405`, a missing or
//! malformed query parameter `400`, each with `{"error": "message"}`.
//!
//! # Parts
//! - [`serve`] and [`router`] (here): the listener with graceful shutdown, and the routes.
//! - [`routes`]: one small module per endpoint, plus the JSON errors.
//! - [`views`]: the serde structs of the answers, mapped from the proxy's and the monitor's
//!   types (which stay free of serde).
//! - [`explain`]: the pure explanation, shared with `lagless explain`.

#![forbid(unsafe_code)]

pub mod explain;
pub mod routes;
pub mod views;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use lagless_proxy::ProxyContext;
use tokio_util::sync::CancellationToken;

pub use routes::router;

/// How long requests in flight may run on after shutdown is requested. Admin answers are
/// immediate; this only bounds a client that stalls mid-request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves the admin interface on `listener` until `shutdown` fires, then lets requests in flight
/// finish (idle keep-alive connections are closed at once), for at most [`SHUTDOWN_GRACE`].
///
/// # Errors
/// Only when the server itself fails; a failed connection is that connection's business.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<ProxyContext>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin interface listening");
    }
    let server = axum::serve(listener, router(ctx))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!("admin requests still running after the shutdown grace; dropped");
            Ok(())
        }
    }
}
