//! The listener: accepts clients up to the connection limit and drains gracefully on shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::client::ClientConn;
use crate::context::ProxyContext;
use crate::error::err_packet;
use crate::session::run_session;

/// How a caller stops [`serve`]: `shutdown` stops accepting and closes idle sessions; statements
/// in flight get the configured grace period before their connections are closed.
#[derive(Clone, Default)]
pub struct ShutdownSignals {
    pub shutdown: CancellationToken,
}

/// Accepts clients on `listener` until `signals.shutdown` fires, then drains.
///
/// # Errors
/// Only a failing listener; per-connection errors are logged in their own task.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<ProxyContext>,
    signals: ShutdownSignals,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(ctx.config.listener.max_connections as usize));
    let tracker = TaskTracker::new();
    let hard = CancellationToken::new();
    info!(address = %listener.local_addr()?, "accepting clients");
    loop {
        let (stream, peer) = tokio::select! {
            _ = signals.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        ctx.stats
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracker.spawn(refuse_too_many(
                stream,
                ctx.config.listener.max_allowed_packet,
            ));
            continue;
        };
        let (ctx, idle, hard) = (ctx.clone(), signals.shutdown.clone(), hard.clone());
        tracker.spawn(async move {
            run_session(stream, peer, ctx, idle, hard).await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    let grace = ctx.config.timeouts.shutdown_grace;
    info!(
        sessions = tracker.len(),
        grace_ms = grace.as_millis() as u64,
        "draining"
    );
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(
            sessions = tracker.len(),
            "grace period over; closing remaining sessions"
        );
        hard.cancel();
        tracker.wait().await;
    }
    info!("all sessions closed");
    Ok(())
}

async fn refuse_too_many(stream: TcpStream, max_packet: usize) {
    let mut client = ClientConn::new(stream, max_packet);
    client.queue_err(
        0,
        &err_packet(
            lagless_protocol::consts::ER_CON_COUNT_ERROR,
            "Too many connections",
        ),
    );
    let _ = client.flush().await;
}
