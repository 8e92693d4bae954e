//! Errors of a client session, and the one place they become ERR packets.

use lagless_protocol::consts::{self, ErrorCode};
use lagless_protocol::ok_err::ErrPacket;
use lagless_protocol::ProtocolError;

/// Why a session (or one of its commands) failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client I/O: {0}")]
    ClientIo(#[source] std::io::Error),
    #[error("client sent a packet of {len} bytes, over max_allowed_packet ({max})")]
    ClientPacketTooLarge { len: usize, max: usize },
    #[error("client protocol error: {0}")]
    ClientProtocol(#[source] ProtocolError),
    #[error("backend {server}: {source}")]
    Backend {
        server: String,
        #[source]
        source: lagless_backend::BackendError,
    },
    #[error("backend {server} closed the connection")]
    BackendLost { server: String },
    #[error("backend {server} sent an unexpected packet: {source}")]
    BackendProtocol {
        server: String,
        #[source]
        source: ProtocolError,
    },
    #[error("handshake timed out")]
    HandshakeTimeout,
    #[error("no free connection to backend {server} within {waited:?} ({cap} per server)")]
    PoolExhausted {
        server: String,
        cap: u32,
        waited: std::time::Duration,
    },
}

impl SessionError {
    /// A backend connection broke or could not be opened (not a server's refusal): evidence
    /// that the server may be down.
    pub fn is_backend_connection_failure(&self) -> bool {
        match self {
            SessionError::BackendLost { .. } => true,
            SessionError::Backend { source, .. } => !source.is_server_error(),
            _ => false,
        }
    }

    /// A server's refusal (its ERR packet) of a command Lagless sent on `server`'s connection.
    pub fn refused(server: &str, err: ErrPacket) -> Self {
        SessionError::Backend {
            server: server.to_string(),
            source: lagless_backend::BackendError::Server {
                code: err.code,
                sql_state: String::from_utf8_lossy(&err.sql_state).into_owned(),
                message: err.message,
            },
        }
    }

    /// The code of a server's refusal (an ERR packet; the connection is still usable).
    pub fn server_error_code(&self) -> Option<u16> {
        match self {
            SessionError::Backend {
                source: lagless_backend::BackendError::Server { code, .. },
                ..
            } => Some(*code),
            _ => None,
        }
    }

    /// The ERR packet a client should get for this error, if it can still receive one.
    pub fn to_err_packet(&self) -> Option<ErrPacket> {
        let (code, message): (ErrorCode, String) = match self {
            SessionError::ClientIo(_) => return None,
            SessionError::ClientPacketTooLarge { .. } => (
                consts::ER_NET_PACKET_TOO_LARGE,
                "Got a packet bigger than 'max_allowed_packet' bytes".into(),
            ),
            SessionError::ClientProtocol(e) => {
                (consts::ER_NET_READ_ERROR, format!("Malformed packet: {e}"))
            }
            SessionError::Backend { server, source } => match source {
                lagless_backend::BackendError::Server {
                    code,
                    sql_state,
                    message,
                } => {
                    let mut state = *b"HY000";
                    if sql_state.len() == 5 {
                        state.copy_from_slice(sql_state.as_bytes());
                    }
                    return Some(ErrPacket {
                        code: *code,
                        sql_state: state,
                        message: message.clone(),
                    });
                }
                other => (
                    consts::PROXY_BACKEND_UNREACHABLE,
                    format!("Lagless cannot reach backend server {server}: {other}"),
                ),
            },
            SessionError::BackendLost { server } => (
                consts::PROXY_BACKEND_LOST,
                format!(
                    "{} ({server}); the statement's outcome is unknown",
                    consts::PROXY_BACKEND_LOST_MESSAGE
                ),
            ),
            SessionError::BackendProtocol { server, source } => (
                consts::PROXY_BACKEND_LOST,
                format!("Backend server {server} sent a malformed response: {source}"),
            ),
            SessionError::HandshakeTimeout => (
                consts::ER_HANDSHAKE_ERROR,
                "Bad handshake: timed out".into(),
            ),
            SessionError::PoolExhausted {
                server,
                cap,
                waited,
            } => (
                consts::ER_CON_COUNT_ERROR,
                format!(
                    "Too many connections: Lagless found no free connection to backend {server} \
                     within {} ms (at most {cap} per server, [pool] max_per_server)",
                    waited.as_millis()
                ),
            ),
        };
        Some(err_packet(code, message))
    }
}

pub fn err_packet(code: ErrorCode, message: impl Into<String>) -> ErrPacket {
    ErrPacket {
        code: code.code,
        sql_state: code.sql_state,
        message: message.into(),
    }
}
