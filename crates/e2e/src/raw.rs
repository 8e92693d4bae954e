//! A raw protocol client for tests that need commands no driver sends on demand (cursor fetch,
//! long data, COM_SET_OPTION, COM_FIELD_LIST) or malformed input.

use std::time::Duration;

use lagless_backend::io::{read_packet, write_packet};
use lagless_backend::{login, Login, LoginOptions};
use lagless_protocol::consts::*;
use lagless_protocol::packet::Packet;

pub use lagless_backend::BackendError;

/// Logs in to the proxy on `port` as `user` with the given extra capabilities.
pub async fn raw_login(
    port: u16,
    user: &str,
    password: &str,
    capabilities: u64,
) -> Result<Login, BackendError> {
    login(&LoginOptions {
        addr: format!("127.0.0.1:{port}"),
        user: user.into(),
        password: password.into(),
        database: Some("app".into()),
        capabilities: capabilities
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_MULTI_RESULTS,
        charset: UTF8MB4_GENERAL_CI,
        connect_attrs: vec![("program_name".into(), "lagless-e2e".into())],
        connect_timeout: Duration::from_secs(5),
        max_packet: 1 << 30,
    })
    .await
}

/// Sends one command (sequence id 0).
pub async fn send(c: &mut Login, payload: &[u8]) -> Result<(), BackendError> {
    write_packet(&mut c.stream, 0, payload).await.map(drop)
}

/// Reads one logical packet.
pub async fn recv(c: &mut Login) -> Result<Packet, BackendError> {
    tokio::time::timeout(
        Duration::from_secs(10),
        read_packet(&mut c.stream, &mut c.read_buf, 1 << 30),
    )
    .await
    .map_err(|_| BackendError::Unexpected("no packet within 10 s".into()))?
}

/// Reads packets until one that `is_last` accepts; returns them all.
pub async fn recv_until(
    c: &mut Login,
    is_last: impl Fn(&[u8]) -> bool,
) -> Result<Vec<Packet>, BackendError> {
    let mut out = Vec::new();
    loop {
        let p = recv(c).await?;
        let last = is_last(&p.payload);
        out.push(p);
        if last {
            return Ok(out);
        }
    }
}

/// A terminator under DEPRECATE_EOF or a classic EOF: 0xFE and short; or an ERR.
pub fn is_end(p: &[u8]) -> bool {
    (p.first() == Some(&0xFE) && p.len() < 0xFF_FFFF) || p.first() == Some(&0xFF)
}

/// Server status of a terminator (OK-style under DEPRECATE_EOF).
pub fn ok_status(p: &[u8], deprecate_eof: bool) -> u16 {
    if deprecate_eof {
        let ok =
            lagless_protocol::ok_err::OkPacket::parse(p, CLIENT_PROTOCOL_41).expect("ok packet");
        ok.status
    } else {
        u16::from_le_bytes([p[3], p[4]])
    }
}
