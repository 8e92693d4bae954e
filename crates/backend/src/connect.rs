//! Logging in to a backend server over TCP or a Unix socket.

use std::time::Duration;

use bytes::BytesMut;
use lagless_protocol::auth::{
    caching_sha2_scramble, encrypt_password, native_scramble, AuthMoreData, AuthSwitchRequest,
    CACHING_SHA2_FAST_AUTH_SUCCESS, CACHING_SHA2_PASSWORD, CACHING_SHA2_PERFORM_FULL_AUTH,
    CACHING_SHA2_REQUEST_PUBLIC_KEY, MYSQL_NATIVE_PASSWORD,
};
use lagless_protocol::consts::*;
use lagless_protocol::handshake::{HandshakeResponse, InitialHandshake};
use lagless_protocol::ok_err::{ErrPacket, OkPacket, ERR_HEADER, OK_HEADER};
use tokio::time::{timeout_at, Instant};

use crate::io::{read_packet, write_packet};
use crate::net::NetStream;
use crate::BackendError;

/// Cap on any packet during login: greetings and auth packets are small.
const LOGIN_MAX_PAYLOAD: usize = 64 * 1024;
/// Auth round trips before giving up on a server that keeps asking.
const MAX_AUTH_ROUNDS: usize = 8;

/// How to log in.
#[derive(Clone)]
pub struct LoginOptions {
    /// `host:port`, or the path of a Unix socket (absolute, see [`crate::net::is_socket_path`]).
    pub addr: String,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// What the proxy wants; intersected with the server's. PROTOCOL_41, SECURE_CONNECTION and
    /// PLUGIN_AUTH are always requested; SSL and compression never (not supported here).
    pub capabilities: u64,
    pub charset: u8,
    pub connect_attrs: Vec<(String, String)>,
    /// Bound on connect plus authentication.
    pub connect_timeout: Duration,
    pub max_packet: u32,
}

impl std::fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("LoginOptions")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("capabilities", &format_args!("{:#x}", self.capabilities))
            .field("charset", &self.charset)
            .field("connect_attrs", &self.connect_attrs)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_packet", &self.max_packet)
            .finish_non_exhaustive()
    }
}

/// A logged-in connection.
#[derive(Debug)]
pub struct Login {
    pub stream: NetStream,
    /// Bytes already read past the final OK (normally empty).
    pub read_buf: BytesMut,
    /// Negotiated capabilities (MariaDB extended ones in the high 32 bits).
    pub capabilities: u64,
    pub server_version: String,
    pub connection_id: u32,
    /// Server status from the final OK.
    pub status: u16,
}

/// Connects to `opts.addr` and authenticates. The whole exchange is bounded by
/// `opts.connect_timeout`.
pub async fn login(opts: &LoginOptions) -> Result<Login, BackendError> {
    let deadline = Instant::now() + opts.connect_timeout;
    let timeout = |stage| BackendError::Timeout {
        stage,
        after: opts.connect_timeout,
    };
    let stream = timeout_at(deadline, NetStream::connect(&opts.addr))
        .await
        .map_err(|_| timeout("connect"))?
        .map_err(|e| BackendError::io(format!("connect to {}", opts.addr), e))?;
    timeout_at(deadline, authenticate(stream, opts))
        .await
        .map_err(|_| timeout("authentication"))?
}

/// Capabilities to send, given what the server offers.
fn negotiate(opts: &LoginOptions, server: u64) -> u64 {
    let mut want = opts.capabilities
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CLIENT_TRANSACTIONS;
    want &= !(CLIENT_SSL
        | CLIENT_SSL_VERIFY_SERVER_CERT
        | CLIENT_COMPRESS
        | CLIENT_ZSTD_COMPRESSION
        | CLIENT_CONNECT_WITH_DB
        | CLIENT_CONNECT_ATTRS);
    if opts.database.is_some() {
        want |= CLIENT_CONNECT_WITH_DB;
    }
    if !opts.connect_attrs.is_empty() {
        want |= CLIENT_CONNECT_ATTRS;
    }
    // The server's high bits are non-zero only when it cleared CLIENT_MYSQL, and then the
    // intersection clears it too, so extended capabilities are sent only to MariaDB.
    want & server
}

fn supported(plugin: &str) -> bool {
    plugin == MYSQL_NATIVE_PASSWORD || plugin == CACHING_SHA2_PASSWORD
}

fn scramble_for(plugin: &str, password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if plugin == CACHING_SHA2_PASSWORD {
        caching_sha2_scramble(password, scramble)
    } else {
        native_scramble(password, scramble)
    }
}

async fn authenticate(mut stream: NetStream, opts: &LoginOptions) -> Result<Login, BackendError> {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let greeting = read_packet(&mut stream, &mut buf, LOGIN_MAX_PAYLOAD).await?;
    if greeting.payload.first() == Some(&ERR_HEADER) {
        return Err(ErrPacket::parse(&greeting.payload)?.into());
    }
    let hs = InitialHandshake::parse(&greeting.payload)?;
    let caps = negotiate(opts, hs.capabilities);
    if caps & CLIENT_PROTOCOL_41 == 0 || caps & CLIENT_SECURE_CONNECTION == 0 {
        return Err(BackendError::Unsupported(format!(
            "server {} does not speak protocol 4.1 with secure authentication",
            hs.server_version
        )));
    }
    let password = opts.password.as_bytes();
    let mut plugin = if caps & CLIENT_PLUGIN_AUTH != 0 && supported(&hs.auth_plugin) {
        hs.auth_plugin.clone()
    } else {
        // Unknown default plugin: answer for native; the server switches us if the account
        // uses something else.
        MYSQL_NATIVE_PASSWORD.to_string()
    };
    let mut scramble = hs.scramble.to_vec();
    let response = HandshakeResponse {
        capabilities: caps,
        max_packet: opts.max_packet,
        charset: opts.charset,
        username: opts.user.clone(),
        auth_response: scramble_for(&plugin, password, &scramble),
        database: opts.database.clone(),
        auth_plugin: Some(plugin.clone()),
        connect_attrs: opts.connect_attrs.clone(),
    };
    let mut seq = write_packet(
        &mut stream,
        greeting.last_seq.wrapping_add(1),
        &response.encode(),
    )
    .await?;
    let mut requested_key = false;

    for _ in 0..MAX_AUTH_ROUNDS {
        let pkt = read_packet(&mut stream, &mut buf, LOGIN_MAX_PAYLOAD).await?;
        if pkt.seq != seq {
            tracing::debug!(
                expected = seq,
                got = pkt.seq,
                "login: unexpected sequence id"
            );
        }
        let reply_seq = pkt.last_seq.wrapping_add(1);
        let payload = &pkt.payload[..];
        match payload.first().copied() {
            Some(OK_HEADER) => {
                let ok = OkPacket::parse(payload, caps)?;
                return Ok(Login {
                    stream,
                    read_buf: buf,
                    capabilities: caps,
                    server_version: hs.server_version,
                    connection_id: hs.connection_id,
                    status: ok.status,
                });
            }
            Some(ERR_HEADER) => return Err(ErrPacket::parse(payload)?.into()),
            Some(AuthSwitchRequest::HEADER) => {
                let switch = AuthSwitchRequest::parse(payload)?;
                if !supported(&switch.plugin) {
                    return Err(BackendError::Unsupported(format!(
                        "authentication plugin {} (user {})",
                        switch.plugin, opts.user
                    )));
                }
                plugin = switch.plugin.clone();
                scramble = switch.scramble().to_vec();
                requested_key = false;
                let resp = scramble_for(&plugin, password, &scramble);
                seq = write_packet(&mut stream, reply_seq, &resp).await?;
            }
            Some(AuthMoreData::HEADER) if plugin == CACHING_SHA2_PASSWORD => {
                let more = AuthMoreData::parse(payload)?;
                if requested_key {
                    let pem = String::from_utf8_lossy(&more.data);
                    let encrypted = encrypt_password(&pem, password, &scramble)?;
                    seq = write_packet(&mut stream, reply_seq, &encrypted).await?;
                    continue;
                }
                match more.data.first().copied() {
                    // The OK follows.
                    Some(CACHING_SHA2_FAST_AUTH_SUCCESS) => seq = reply_seq,
                    Some(CACHING_SHA2_PERFORM_FULL_AUTH) => {
                        requested_key = true;
                        seq = write_packet(
                            &mut stream,
                            reply_seq,
                            &[CACHING_SHA2_REQUEST_PUBLIC_KEY],
                        )
                        .await?;
                    }
                    other => {
                        return Err(BackendError::Unexpected(format!(
                            "caching_sha2_password data {other:?}"
                        )))
                    }
                }
            }
            other => {
                return Err(BackendError::Unexpected(format!(
                    "packet starting with {other:?} during authentication with {plugin}"
                )))
            }
        }
    }
    Err(BackendError::Unexpected(format!(
        "authentication did not finish after {MAX_AUTH_ROUNDS} round trips"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoginOptions {
        LoginOptions {
            addr: String::new(),
            user: "u".into(),
            password: "p".into(),
            database: None,
            capabilities: CLIENT_SESSION_TRACK
                | CLIENT_DEPRECATE_EOF
                | CLIENT_SSL
                | CLIENT_MULTI_RESULTS
                | MARIADB_CLIENT_CACHE_METADATA
                | MARIADB_CLIENT_COM_MULTI,
            charset: UTF8MB4_GENERAL_CI,
            connect_attrs: vec![],
            connect_timeout: Duration::from_secs(1),
            max_packet: 1 << 24,
        }
    }

    #[test]
    fn negotiates_with_mariadb() {
        let server = 0x81ff_f7fe | 0x1d << 32;
        let caps = negotiate(&opts(), server);
        assert_eq!(caps & CLIENT_MYSQL, 0);
        assert_eq!(caps & CLIENT_SSL, 0, "never SSL");
        assert_eq!(caps & CLIENT_CONNECT_WITH_DB, 0);
        assert_ne!(caps & CLIENT_SESSION_TRACK, 0);
        assert_ne!(caps & MARIADB_CLIENT_CACHE_METADATA, 0);
        assert_eq!(
            caps & MARIADB_CLIENT_COM_MULTI,
            0,
            "server does not offer it"
        );
        assert_ne!(caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, 0);
    }

    #[test]
    fn debug_hides_password() {
        assert!(!format!("{:?}", opts()).contains("\"p\""));
    }

    #[test]
    fn negotiates_with_mysql() {
        let server = 0xdfff_ffff; // MySQL 8: CLIENT_MYSQL (LONG_PASSWORD) set, no extended caps
        let mut o = opts();
        o.database = Some("db".into());
        let caps = negotiate(&o, server);
        assert_eq!(caps >> 32, 0);
        assert_ne!(caps & CLIENT_CONNECT_WITH_DB, 0);
        assert_eq!(caps & CLIENT_CONNECT_ATTRS, 0);
    }
}
