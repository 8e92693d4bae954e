//! The check's table: created through the proxy, then awaited on every replica.

use std::time::Duration;

use anyhow::{bail, Result};

use super::conn::{close, query_drop, query_first, Endpoint};
use super::TABLE;

/// How long the replicas get to receive the table before the check gives up. Generous: a
/// replica still delayed by an earlier, killed run needs its whole delay.
const REPLICA_WAIT: Duration = Duration::from_secs(60);

/// Creates the table with one row per writer (rows and values of earlier runs are kept: the
/// values written are time-based and always larger), then waits until every replica has the
/// rows, so that the check measures lag, not set-up.
pub async fn prepare(proxy: &Endpoint, replicas: &[Endpoint], writers: u32) -> Result<()> {
    let mut conn = proxy.connect().await?;
    let t = proxy.timeout;
    query_drop(
        &mut conn,
        &format!("CREATE TABLE IF NOT EXISTS {TABLE} (id INT PRIMARY KEY, v BIGINT NOT NULL)"),
        t,
    )
    .await?;
    let rows: Vec<String> = (1..=writers).map(|id| format!("({id}, 0)")).collect();
    query_drop(
        &mut conn,
        &format!(
            "INSERT IGNORE INTO {TABLE} (id, v) VALUES {}",
            rows.join(", ")
        ),
        t,
    )
    .await?;
    close(conn, t).await;
    for replica in replicas {
        wait_rows(replica, writers).await?;
    }
    Ok(())
}

/// Polls the replica directly (not through the proxy, which picks the replica itself).
async fn wait_rows(replica: &Endpoint, writers: u32) -> Result<()> {
    let deadline = tokio::time::Instant::now() + REPLICA_WAIT;
    let sql = format!("SELECT COUNT(*) FROM {TABLE} WHERE id BETWEEN 1 AND {writers}");
    let mut last = String::from("not connected");
    let mut conn = None;
    while tokio::time::Instant::now() < deadline {
        if conn.is_none() {
            match replica.connect().await {
                Ok(c) => conn = Some(c),
                Err(e) => last = format!("{e:#}"),
            }
        }
        if let Some(c) = conn.as_mut() {
            // Error 1146 (no such table) until the CREATE arrives.
            match query_first::<(u64,)>(c, &sql, replica.timeout).await {
                Ok(Some((n,))) if n == u64::from(writers) => {
                    if let Some(c) = conn.take() {
                        close(c, replica.timeout).await;
                    }
                    return Ok(());
                }
                Ok(n) => last = format!("{} of {writers} rows", n.map_or(0, |(n,)| n)),
                Err(e) => last = format!("{e:#}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the replica on {} did not get {TABLE} within {REPLICA_WAIT:?} ({last}); is it \
         stopped or still delayed? (`lagless sandbox status`, `lagless sandbox lag --resume`)",
        replica.addr()
    )
}
