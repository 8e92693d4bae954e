//! The replication monitor: it polls every backend server over one persistent control
//! connection each, and publishes what it saw as a [`Snapshot`] on a `tokio::sync::watch`
//! channel.
//!
//! ```no_run
//! # async fn demo() {
//! use lagless_topology::{spawn, MonitorConfig, MonitoredServer};
//! use tokio_util::sync::CancellationToken;
//!
//! let servers = vec![MonitoredServer::new(0, 0, "primary", "127.0.0.1:3310")];
//! let config = MonitorConfig::new(servers, "monitor", "secret");
//! let shutdown = CancellationToken::new();
//! let (mut snapshots, task) = spawn(config, shutdown.clone());
//! snapshots.changed().await.unwrap();
//! println!("{:?}", snapshots.borrow().servers[0].read_only);
//! shutdown.cancel();
//! task.await.unwrap();
//! # }
//! ```
//!
//! Parts:
//! - [`config`]: [`MonitorConfig`] (servers, credentials, interval, timeouts, heartbeat) and its
//!   validation.
//! - [`types`]: what is published: [`Snapshot`], [`ServerObservation`], [`ReplicaStatus`],
//!   [`BinlogPosition`], [`SemiSync`], [`Flavour`]. Plain data, no behaviour beyond helpers.
//! - [`parse`]: pure parsers from a [`TextResult`](lagless_backend::TextResult) (or a version
//!   string) to those types, unit-tested with rows captured from real servers.
//! - `queries`: which statements to send, by flavour and version (MySQL 8.0.22 renamed SLAVE to
//!   REPLICA, 8.4 removed SHOW MASTER STATUS).
//! - `probe`: one server's connection and one probe of it: connect (bounded by the connect
//!   timeout), then at most 3 statements on MariaDB (4 on MySQL) bounded together by the probe
//!   timeout, plus the heartbeat write on the primary.
//! - [`heartbeat`]: the optional heartbeat table: its statements, which server may write it, and
//!   the lag it gives.
//! - `monitor`: [`spawn`]: one task per server and the task that gathers their observations
//!   into rounds and publishes snapshots.
//! - [`binlog_stream`]: GTID streaming: each server's binlog read as a replication client, so
//!   that its committed GTIDs are known within milliseconds between polls ([`spawn_streams`]).
//! - [`failover`]: deciding from the snapshots that the primary failed and which replica to
//!   promote (pure), and the actions: failover, switchover, fence, rejoin, the failover lock.
//!
//! Time is `tokio::time::Instant` throughout, so tests can run with paused time.
#![forbid(unsafe_code)]

pub mod binlog_stream;
pub mod config;
pub mod failover;
pub mod heartbeat;
mod login;
mod monitor;
pub mod parse;
mod probe;
mod queries;
pub mod types;

use std::time::Duration;

use lagless_backend::BackendError;

pub use binlog_stream::{spawn_streams, StreamConfig, StreamDemand, StreamState, StreamedServer};
pub use config::{HeartbeatConfig, MonitorConfig, MonitoredServer};
pub use monitor::spawn;
pub use types::{
    BinlogPosition, Flavour, ReplicaStatus, SemiSync, ServerObservation, Snapshot, ThreadState,
};

/// Errors of the monitor. A probe's error ends up, as text, in
/// [`ServerObservation::error`]; [`MonitorConfig::validate`] returns the configuration ones.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Connecting or logging in failed (refused, timed out, bad credentials...).
    #[error("connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: BackendError,
    },
    /// A statement did not answer within the probe's timeout; the connection was dropped.
    #[error("{statement}: no answer within {after:?}")]
    Timeout {
        statement: &'static str,
        after: Duration,
    },
    /// A statement failed: an ERR from the server (the connection stays usable) or a lost
    /// connection.
    #[error("{statement}: {source}")]
    Query {
        statement: &'static str,
        #[source]
        source: BackendError,
    },
    /// A statement answered with something this crate cannot read.
    #[error("{statement}: unexpected result: {detail}")]
    Malformed {
        statement: &'static str,
        detail: String,
    },
    /// A configuration value that cannot work.
    #[error("monitor configuration: {field}: {reason}")]
    InvalidConfig {
        field: &'static str,
        reason: &'static str,
    },
}

impl TopologyError {
    /// True when the server did not answer properly and the connection must be dropped: a
    /// timeout, a lost or out-of-sync connection. False for an ERR packet.
    pub fn breaks_connection(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } => true,
            Self::Query { source, .. } => !source.is_server_error(),
            Self::Malformed { .. } | Self::InvalidConfig { .. } => false,
        }
    }

    /// The server's error code for an ERR packet.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            Self::Query {
                source: BackendError::Server { code, .. },
                ..
            } => Some(*code),
            _ => None,
        }
    }
}
