//! MySQL/MariaDB wire protocol without I/O.
//!
//! Modules:
//! - [`packet`]: 4-byte packet framing, decoding in place from a `BytesMut`, 16 MiB splitting.
//! - [`consts`]: capability and status flags, command bytes, error codes, charset ids.
//! - [`lenenc`]: length-encoded integers/strings and a bounds-checked [`lenenc::Reader`].
//! - [`handshake`]: the server greeting (protocol 10) and the client's handshake response.
//! - [`auth`]: mysql_native_password, caching_sha2_password (incl. RSA), auth switch packets.
//! - [`ok_err`]: OK (with session-state tracking), ERR and EOF packets.
//! - [`response`]: where a command's response ends, packet by packet, for streaming relays.
//!
//! Every parser takes untrusted bytes and returns [`ProtocolError`] instead of panicking.
#![forbid(unsafe_code)]

pub mod auth;
pub mod consts;
pub mod handshake;
pub mod lenenc;
pub mod ok_err;
pub mod packet;
pub mod response;

/// Errors from parsing or building protocol messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The input ended before a field that must be there.
    #[error("truncated packet")]
    Truncated,
    /// A packet header announced more payload than allowed.
    #[error("packet of {len} bytes exceeds the limit of {max} bytes")]
    PacketTooLarge { len: usize, max: usize },
    /// The bytes do not form the expected message.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A packet that cannot occur at this point of a response.
    #[error("unexpected packet: {0}")]
    UnexpectedPacket(&'static str),
    /// A key or cryptographic operation failed.
    #[error("crypto error: {0}")]
    Crypto(&'static str),
}
