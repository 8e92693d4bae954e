//! The per-client loop: handshake, then read a command and hand it to the engine, until the
//! client quits, the connection breaks, or the proxy shuts down.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use lagless_backend::NetStream;
use tracing::{debug, info_span, Instrument};

use crate::client::ClientConn;
use crate::context::ProxyContext;
use crate::engine::{Engine, Flow};
use crate::error::SessionError;
use crate::handshake;
use crate::peer::Peer;
use crate::session_stop::{SessionStop, SessionStops};

/// Serves one client connection to its end, on the worker runtime of pool shard `shard`.
/// Errors are logged here, in the connection's task.
pub async fn run_session(
    stream: NetStream,
    peer: Peer,
    shard: usize,
    ctx: Arc<ProxyContext>,
    stops: Arc<SessionStops>,
) {
    let connection_id = ctx.next_connection_id();
    let span = info_span!("session", id = connection_id, %peer);
    async move {
        ctx.stats.connections_active.fetch_add(1, Ordering::Relaxed);
        let stop = stops.join();
        let result = tokio::select! {
            biased;
            r = serve(stream, peer, shard, &ctx, connection_id, &stop) => r,
            () = stop.hard() => Ok(()),
        };
        ctx.stats.connections_active.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(()) => debug!("session closed"),
            Err(e) => debug!(error = %e, "session ended with an error"),
        }
    }
    .instrument(span)
    .await
}

async fn serve(
    stream: NetStream,
    peer: Peer,
    shard: usize,
    ctx: &Arc<ProxyContext>,
    connection_id: u32,
    stop: &SessionStop,
) -> Result<(), SessionError> {
    let _ = stream.set_nodelay(true);
    let mut client = ClientConn::new(stream, ctx.config.listener.max_allowed_packet);
    let timeout = ctx.config.timeouts.handshake;
    let identity = match tokio::time::timeout(
        timeout,
        handshake::accept(&mut client, ctx, connection_id, peer),
    )
    .await
    {
        Err(_) => return report(&mut client, SessionError::HandshakeTimeout, 2).await,
        Ok(Err(SessionError::ClientPacketTooLarge { len, max })) => {
            return report(
                &mut client,
                SessionError::ClientPacketTooLarge { len, max },
                2,
            )
            .await
        }
        Ok(r) => r?,
    };
    let Some(identity) = identity else {
        return Ok(());
    };
    let mut engine = Engine::new(ctx.clone(), client, identity, peer, shard);
    if !engine.open().await? {
        return Ok(());
    }
    loop {
        let hold = engine.holds_connection();
        let packet = tokio::select! {
            biased;
            () = stop.idle() => return Ok(()),
            p = engine.client.read_packet() => p,
            // In a block: select! evaluates every branch's expression, even a disabled one,
            // and a Sleep made per statement reads the clock.
            () = async { tokio::time::sleep(ctx.config.pool.hold).await }, if hold => {
                engine.release_held();
                continue;
            }
        };
        let packet = match packet {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(e @ SessionError::ClientPacketTooLarge { .. }) => {
                return report(&mut engine.client, e, 1).await
            }
            Err(e) => return Err(e),
        };
        ctx.stats.commands.fetch_add(1, Ordering::Relaxed);
        if engine.handle(packet).await? == Flow::Close {
            return Ok(());
        }
    }
}

/// Tells the client why its connection is being closed, as a server would.
async fn report(client: &mut ClientConn, error: SessionError, seq: u8) -> Result<(), SessionError> {
    if let Some(err) = error.to_err_packet() {
        client.queue_err(seq, &err);
        let _ = client.flush().await;
    }
    if matches!(error, SessionError::ClientPacketTooLarge { .. }) {
        // The client is probably still sending the oversized packet. Closing with unread input
        // would reset the connection and destroy the error packet before the client reads it,
        // so discard its input for a bounded time first.
        let _ = tokio::time::timeout(DRAIN_LIMIT, client.discard_input(DRAIN_BYTES)).await;
    }
    Err(error)
}

const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
const DRAIN_BYTES: usize = 256 << 20;
