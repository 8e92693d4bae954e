//! Backend server connections: connect (TCP or a Unix socket) and login to MariaDB/MySQL, plus
//! a tiny control-plane client for set-up statements and health checks.
//!
//! Modules:
//! - [`connect`]: [`login`] with mysql_native_password and caching_sha2_password (fast auth, and
//!   full auth by RSA with the server's public key), auth switches, timeouts.
//! - [`net`]: [`NetStream`], a TCP or Unix socket.
//! - [`io`]: read/write whole packets on a stream with a `BytesMut` read buffer.
//! - [`control`]: `COM_QUERY` returning an OK or a small text result; `COM_PING`.
//!   Not for the hot path: it parses and allocates every row.
#![forbid(unsafe_code)]

pub mod connect;
pub mod control;
pub mod io;
pub mod net;

pub use connect::{login, Login, LoginOptions};
pub use control::{QueryResult, TextResult};
pub use net::{is_socket_path, NetStream, StdNetStream};

use std::time::Duration;

use lagless_protocol::ok_err::ErrPacket;
use lagless_protocol::ProtocolError;

/// Errors from backend connections.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {after:?} during {stage}")]
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    /// The server answered with an ERR packet.
    #[error("server error {code} ({sql_state}): {message}")]
    Server {
        code: u16,
        sql_state: String,
        message: String,
    },
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A packet that does not fit the exchange; the connection is out of sync and must be closed.
    #[error("unexpected packet: {0}")]
    Unexpected(String),
}

impl BackendError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// True for an ERR from the server: the connection is still usable afterwards.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::Server { .. })
    }
}

impl From<ErrPacket> for BackendError {
    fn from(e: ErrPacket) -> Self {
        Self::Server {
            code: e.code,
            sql_state: e.sql_state_str(),
            message: e.message,
        }
    }
}
