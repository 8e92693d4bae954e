//! The Lagless proxy: accepts MySQL clients, authenticates them, and forwards their commands to
//! the backend servers chosen by the routing step.
//!
//! Parts, in the order a connection meets them:
//! - [`server`]: listener, connection limit, graceful shutdown.
//! - [`peer`]: a client's address (TCP or the Unix socket).
//! - [`client`]: framing on the client socket (reads whole commands, enforces max_allowed_packet).
//! - [`handshake`]: greeting and authentication of the client against the configured users.
//! - [`session`]: the thin per-client loop: read a command, hand it to the engine.
//! - [`engine`]: one command: intercept → route → execute on a backend.
//! - [`backends`]: the session's backend connections, opened lazily with the session's settings.
//! - [`pool`]: backend connections shared between sessions, with a cap per server.
//! - [`relay`]: streams a backend's response to the client, packet-aware but without buffering.
//! - [`context`]: what all sessions share (config snapshot, RSA key, counters); passed explicitly.
//! - [`failover_driver`]: automatic failover from the monitor's snapshots.
//! - [`ha_history`]: the failovers, switchovers and rejoins done, step by step, for admin.
//! - [`monitor_feed`]: runs the replication monitor and feeds its snapshots to the routing view.
//! - [`cluster_state`]: server health, load and counters; publishes the routing snapshot.
//! - [`error`]: the one place internal errors become client ERR packets.

#![forbid(unsafe_code)]

pub mod backends;
pub mod client;
pub mod cluster_state;
pub mod context;
pub mod engine;
pub mod error;
pub mod failover_driver;
pub mod ha_history;
pub mod handshake;
pub mod monitor_feed;
pub mod peer;
pub mod pool;
pub mod relay;
pub mod server;
pub mod session;
pub mod session_stop;
pub mod stmt_cache;
pub mod wakers;

pub use context::ProxyContext;
pub use peer::Peer;
pub use server::{serve, serve_on, ClientListeners, ShutdownSignals};
