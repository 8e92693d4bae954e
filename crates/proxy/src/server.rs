//! The listener: accepts clients up to the connection limit and drains gracefully on shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use lagless_backend::{NetStream, StdNetStream};
use tokio::net::{TcpListener, UnixListener};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::client::ClientConn;
use crate::context::ProxyContext;
use crate::error::err_packet;
use crate::peer::Peer;
use crate::session::run_session;
use crate::session_stop::SessionStops;

/// How a caller stops [`serve`]: `shutdown` stops accepting and closes idle sessions; statements
/// in flight get the configured grace period before their connections are closed.
#[derive(Clone, Default)]
pub struct ShutdownSignals {
    pub shutdown: CancellationToken,
}

/// Where clients connect: a TCP listener and optionally a Unix socket.
pub struct ClientListeners {
    pub tcp: TcpListener,
    pub unix: Option<UnixListener>,
}

impl From<TcpListener> for ClientListeners {
    fn from(tcp: TcpListener) -> Self {
        ClientListeners { tcp, unix: None }
    }
}

impl ClientListeners {
    /// The next client, from either listener.
    async fn accept(&self) -> std::io::Result<(NetStream, Peer)> {
        let unix = async {
            match &self.unix {
                Some(u) => u
                    .accept()
                    .await
                    .map(|(s, _)| (NetStream::Unix(s), Peer::Local)),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = self.tcp.accept() => r.map(|(s, a)| (NetStream::Tcp(s), Peer::Tcp(a))),
            r = unix => r,
        }
    }
}

/// Accepts clients on `listener` until `signals.shutdown` fires, then drains. Sessions run on
/// the current runtime.
///
/// # Errors
/// Only a failing listener; per-connection errors are logged in their own task.
pub async fn serve(
    listener: impl Into<ClientListeners>,
    ctx: Arc<ProxyContext>,
    signals: ShutdownSignals,
) -> std::io::Result<()> {
    serve_on(listener, ctx, signals, &[]).await
}

/// Like [`serve`], but each session runs on one of `workers` (single-threaded runtimes, one per
/// pool shard: `workers[i]` serves shard `i`), the one with the fewest sessions when it
/// connects. Empty: on the current runtime, shard 0.
///
/// # Errors
/// A failing listener, or more workers than `ctx` has pool shards (see
/// `ProxyContext::with_shards`); per-connection errors are logged in their own task.
pub async fn serve_on(
    listener: impl Into<ClientListeners>,
    ctx: Arc<ProxyContext>,
    signals: ShutdownSignals,
    workers: &[Handle],
) -> std::io::Result<()> {
    if workers.len() > ctx.worker_sessions.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} worker runtimes but {} pool shards",
                workers.len(),
                ctx.worker_sessions.len()
            ),
        ));
    }
    let listener = listener.into();
    let limit = Arc::new(Semaphore::new(ctx.config.listener.max_connections as usize));
    let tracker = TaskTracker::new();
    let stops = SessionStops::new();
    info!(address = %listener.tcp.local_addr()?, "accepting clients");
    if let Some(u) = &listener.unix {
        info!(socket = ?u.local_addr()?.as_pathname(), "accepting clients");
    }
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
        let (ctx, stops) = (ctx.clone(), stops.clone());
        let (shard, stream) = if workers.is_empty() {
            (0, Accepted::Here(stream))
        } else {
            // The socket is registered with the runtime that uses it: moved out of this one's.
            match stream.into_std() {
                Ok(s) => (
                    least_busy(&ctx.worker_sessions[..workers.len()]),
                    Accepted::Moving(s),
                ),
                Err(e) => {
                    warn!(error = %e, "cannot hand a client connection to a worker");
                    continue;
                }
            }
        };
        ctx.worker_sessions[shard].fetch_add(1, Ordering::Relaxed);
        let session = tracker.track_future(async move {
            match stream.registered_here() {
                Ok(stream) => run_session(stream, peer, shard, ctx.clone(), stops).await,
                Err(e) => warn!(error = %e, "a worker cannot take a client connection"),
            }
            ctx.worker_sessions[shard].fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
        match workers.get(shard) {
            Some(worker) => drop(worker.spawn(session)),
            None => drop(tokio::spawn(session)),
        }
    }
    drop(listener);
    stops.stop_idle();
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
        stops.stop_all();
        tracker.wait().await;
    }
    info!("all sessions closed");
    Ok(())
}

/// An accepted client socket: registered with the listener's runtime, or on its way to a
/// worker's.
enum Accepted {
    Here(NetStream),
    Moving(StdNetStream),
}

impl Accepted {
    /// The socket, registered with the runtime this is called on.
    fn registered_here(self) -> std::io::Result<NetStream> {
        match self {
            Accepted::Here(s) => Ok(s),
            Accepted::Moving(s) => s.into_tokio(),
        }
    }
}

/// The shard with the fewest sessions (the first of equals).
fn least_busy(sessions: &[AtomicUsize]) -> usize {
    (0..sessions.len())
        .min_by_key(|&i| sessions[i].load(Ordering::Relaxed))
        .unwrap_or(0)
}

async fn refuse_too_many(stream: NetStream, max_packet: usize) {
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
