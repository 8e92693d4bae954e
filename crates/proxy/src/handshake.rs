//! Greeting and authentication of a client against the configured users.
//!
//! Lagless authenticates clients itself (it never forwards their credentials): the config holds
//! only password hashes, which is exactly what mysql_native_password and caching_sha2_password
//! fast authentication need. caching_sha2_password full authentication (the first login of a user
//! since start, as on a MySQL server) recovers the password through RSA, since Lagless has no TLS.

use lagless_config::User;
use lagless_protocol::auth;
use lagless_protocol::consts::{self, *};
use lagless_protocol::handshake::{
    generate_scramble, is_ssl_request, HandshakeResponse, InitialHandshake,
};

use crate::client::ClientConn;
use crate::context::ProxyContext;
use crate::error::{err_packet, SessionError};
use crate::peer::Peer;

pub const NATIVE: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";

/// What a client agreed to and who it is.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub user: String,
    pub database: Option<String>,
    pub charset: u8,
    pub connect_attrs: Vec<(String, String)>,
    /// Sequence id for the server's next packet (the final OK or ERR of the handshake).
    pub next_seq: u8,
    /// The greeting's scramble: COM_CHANGE_USER answers are computed against it.
    pub scramble: [u8; 20],
}

/// Capabilities Lagless offers to clients. CLIENT_MYSQL (bit 0) is set: Lagless does not offer
/// MariaDB's extended capabilities (progress reports, bulk execution) yet.
pub fn offered_capabilities(local_infile: bool) -> u64 {
    let mut caps = CLIENT_LONG_PASSWORD
        | CLIENT_FOUND_ROWS
        | CLIENT_LONG_FLAG
        | CLIENT_CONNECT_WITH_DB
        | CLIENT_IGNORE_SPACE
        | CLIENT_PROTOCOL_41
        | CLIENT_INTERACTIVE
        | CLIENT_IGNORE_SIGPIPE
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_STATEMENTS
        | CLIENT_MULTI_RESULTS
        | CLIENT_PS_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH
        | CLIENT_CONNECT_ATTRS
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CLIENT_SESSION_TRACK
        | CLIENT_DEPRECATE_EOF;
    if local_infile {
        caps |= CLIENT_LOCAL_FILES;
    }
    caps
}

/// Runs the server side of the handshake. `Ok(None)`: the client was refused (it has been sent
/// an ERR packet already).
///
/// # Errors
/// I/O and protocol errors; the caller closes the connection.
pub async fn accept(
    client: &mut ClientConn,
    ctx: &ProxyContext,
    connection_id: u32,
    peer: Peer,
) -> Result<Option<ClientIdentity>, SessionError> {
    let offered = offered_capabilities(ctx.config.listener.local_infile);
    let scramble = generate_scramble();
    let greeting = InitialHandshake {
        server_version: ctx.server_version.clone(),
        connection_id,
        scramble,
        capabilities: offered,
        charset: UTF8MB4_GENERAL_CI,
        status: SERVER_STATUS_AUTOCOMMIT,
        auth_plugin: NATIVE.to_string(),
    };
    client.queue(0, &greeting.encode());
    client.flush().await?;

    let Some(packet) = client.read_packet().await? else {
        return Err(SessionError::ClientIo(
            std::io::ErrorKind::UnexpectedEof.into(),
        ));
    };
    let seq = packet.last_seq.wrapping_add(1);
    if is_ssl_request(&packet.payload) {
        refuse(
            client,
            seq,
            consts::ER_HANDSHAKE_ERROR,
            "Lagless does not offer SSL/TLS on this listener",
        )
        .await?;
        return Ok(None);
    }
    let response = match HandshakeResponse::parse(&packet.payload) {
        Ok(r) if r.capabilities & CLIENT_PROTOCOL_41 != 0 => r,
        Ok(_) => {
            refuse(
                client,
                seq,
                consts::ER_HANDSHAKE_ERROR,
                "Lagless needs a client speaking protocol 4.1",
            )
            .await?;
            return Ok(None);
        }
        Err(e) => {
            refuse(
                client,
                seq,
                consts::ER_HANDSHAKE_ERROR,
                format!("Bad handshake: {e}"),
            )
            .await?;
            return Ok(None);
        }
    };
    client.capabilities = response.capabilities & offered;
    let outcome = authenticate(
        client,
        ctx,
        AuthStart {
            user: &response.username,
            plugin: response.auth_plugin.as_deref(),
            scramble: &scramble,
            response: &response.auth_response,
            seq,
            peer,
        },
    )
    .await?;
    let Some(next_seq) = outcome else {
        return Ok(None);
    };
    Ok(Some(ClientIdentity {
        user: response.username,
        database: response.database.filter(|d| !d.is_empty()),
        charset: response.charset,
        connect_attrs: response.connect_attrs,
        next_seq,
        scramble,
    }))
}

/// The first authentication message of a client (from its handshake response or COM_CHANGE_USER).
pub struct AuthStart<'a> {
    pub user: &'a str,
    pub plugin: Option<&'a str>,
    pub scramble: &'a [u8],
    pub response: &'a [u8],
    pub seq: u8,
    pub peer: Peer,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Native,
    CachingSha2,
}

impl Method {
    fn plugin(self) -> &'static str {
        match self {
            Method::Native => NATIVE,
            Method::CachingSha2 => CACHING_SHA2,
        }
    }
}

/// Verifies a client's credentials, switching it to a method the user has a hash for when needed.
/// Returns the sequence id for the final OK on success; on failure the client has been sent
/// ER_ACCESS_DENIED_ERROR and `None` is returned.
///
/// # Errors
/// I/O and protocol errors.
pub async fn authenticate(
    client: &mut ClientConn,
    ctx: &ProxyContext,
    start: AuthStart<'_>,
) -> Result<Option<u8>, SessionError> {
    let mut seq = start.seq;
    let denied = |using_password: bool| {
        format!(
            "Access denied for user '{}'@'{}' (using password: {})",
            start.user,
            start.peer.host(),
            if using_password { "YES" } else { "NO" }
        )
    };
    let Some(user) = ctx.config.user(start.user) else {
        ctx.stats
            .auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        refuse(
            client,
            seq,
            consts::ER_ACCESS_DENIED_ERROR,
            denied(!start.response.is_empty()),
        )
        .await?;
        return Ok(None);
    };
    let wanted = choose_method(user, start.plugin);
    let mut scramble = start.scramble.to_vec();
    let mut response = start.response.to_vec();
    // Switch when the client answered with another method, or sent nothing because its method
    // differs from the greeting's (libmariadb does that for caching_sha2_password).
    if start.plugin != Some(wanted.plugin()) || (response.is_empty() && wanted != Method::Native) {
        // Ask the client to answer with the method this user has a hash for, on a new scramble.
        scramble = generate_scramble().to_vec();
        let mut switch = vec![0xFE];
        switch.extend_from_slice(wanted.plugin().as_bytes());
        switch.push(0);
        switch.extend_from_slice(&scramble);
        switch.push(0);
        client.queue(seq, &switch);
        client.flush().await?;
        let p = read_auth_packet(client).await?;
        seq = p.last_seq.wrapping_add(1);
        response = p.payload.to_vec();
    }
    let ok = match wanted {
        Method::Native => user
            .native_password
            .is_some_and(|h| auth::verify_native(&h, &scramble, &response)),
        Method::CachingSha2 => {
            let Some(stored) = user.caching_sha2_password else {
                return Ok(None);
            };
            let answer = Sha2Answer {
                scramble: &scramble,
                response: &response,
                seq,
                peer: start.peer,
            };
            let (verified, next) = caching_sha2(client, ctx, user, &stored, answer).await?;
            seq = next;
            verified
        }
    };
    if ok {
        Ok(Some(seq))
    } else {
        ctx.stats
            .auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        refuse(
            client,
            seq,
            consts::ER_ACCESS_DENIED_ERROR,
            denied(!response.is_empty()),
        )
        .await?;
        Ok(None)
    }
}

fn choose_method(user: &User, requested: Option<&str>) -> Method {
    match requested {
        Some(CACHING_SHA2) if user.caching_sha2_password.is_some() => Method::CachingSha2,
        Some(NATIVE) if user.native_password.is_some() => Method::Native,
        _ if user.native_password.is_some() => Method::Native,
        _ => Method::CachingSha2,
    }
}

/// The client's scrambled caching_sha2_password answer and where the exchange stands.
struct Sha2Answer<'a> {
    scramble: &'a [u8],
    response: &'a [u8],
    seq: u8,
    peer: Peer,
}

/// caching_sha2_password after the client's scrambled answer. Returns whether the password is
/// right and the sequence id of the server's next packet.
async fn caching_sha2(
    client: &mut ClientConn,
    ctx: &ProxyContext,
    user: &User,
    stored: &[u8; 32],
    answer: Sha2Answer<'_>,
) -> Result<(bool, u8), SessionError> {
    let Sha2Answer {
        scramble,
        response,
        seq,
        peer,
    } = answer;
    if response.is_empty() || response == [0] {
        return Ok((auth::verify_cleartext_caching_sha2(stored, b""), seq));
    }
    if !auth::verify_caching_sha2_fast(stored, scramble, response) {
        tracing::debug!(
            len = response.len(),
            "caching_sha2 fast answer does not match"
        );
        return Ok((false, seq));
    }
    if ctx.sha2_cached(&user.name) {
        client.queue(seq, &[0x01, 0x03]); // fast_auth_success
        return Ok((true, seq.wrapping_add(1)));
    }
    // Full authentication: without TLS the password travels RSA-encrypted with our public key.
    client.queue(seq, &[0x01, 0x04]);
    client.flush().await?;
    let mut p = read_auth_packet(client).await?;
    if p.payload[..] == [0x02] {
        let mut more = vec![0x01];
        more.extend_from_slice(ctx.rsa.public_key_pem().as_bytes());
        client.queue(p.last_seq.wrapping_add(1), &more);
        client.flush().await?;
        p = read_auth_packet(client).await?;
    }
    let next = p.last_seq.wrapping_add(1);
    let password = match ctx.rsa.decrypt_password(&p.payload, scramble) {
        Ok(password) => Some(password),
        // Some clients (libmariadb) send the password in clear over TCP. Accepted only from a
        // loopback or Unix socket peer, where it never leaves the machine; elsewhere it
        // is refused, as MySQL does on an insecure connection.
        Err(_) if peer.is_this_machine() => p.payload.strip_suffix(&[0]).map(<[u8]>::to_vec),
        Err(_) => None,
    };
    let verified = password.is_some_and(|pw| auth::verify_cleartext_caching_sha2(stored, &pw));
    if verified {
        ctx.sha2_remember(&user.name);
    }
    Ok((verified, next))
}

async fn read_auth_packet(
    client: &mut ClientConn,
) -> Result<lagless_protocol::packet::Packet, SessionError> {
    client
        .read_packet()
        .await?
        .ok_or_else(|| SessionError::ClientIo(std::io::ErrorKind::UnexpectedEof.into()))
}

async fn refuse(
    client: &mut ClientConn,
    seq: u8,
    code: ErrorCode,
    message: impl Into<String>,
) -> Result<(), SessionError> {
    client.queue_err(seq, &err_packet(code, message));
    client.flush().await
}
