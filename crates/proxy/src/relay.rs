//! Streams one command's response from a backend to the client.
//!
//! Hand-written rather than a decode/encode codec because this is the hot path: bytes are read
//! into the backend connection's buffer and written to the client in the same contiguous chunks,
//! while packet headers are walked in place to find where the response ends. Only OK packets that
//! must change for the client (session-state info it did not ask for) are rebuilt. Memory stays
//! bounded by the read chunk plus one status packet, whatever the size of the result.

use std::hash::Hasher;

use bytes::Buf;
use lagless_protocol::consts::{
    CLIENT_DEPRECATE_EOF, CLIENT_SESSION_TRACK, SERVER_SESSION_STATE_CHANGED,
};
use lagless_protocol::ok_err::{strip_session_state, ErrPacket, ERR_HEADER};
use lagless_protocol::packet::{read_header, write_header, HEADER_LEN, MAX_PAYLOAD};
use lagless_protocol::response::{Event, Expect, PacketKind, ResponseTracker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backends::BackendConn;
use crate::client::ClientConn;
use crate::error::SessionError;

const READ_CHUNK: usize = 64 * 1024;

/// What the relay learned about the response.
#[derive(Debug, Default, Clone, Copy)]
pub struct Relayed {
    /// Server status flags of the last OK/EOF (transaction state, autocommit).
    pub status: Option<u16>,
    pub bytes: u64,
    pub packets: u64,
    pub was_error: bool,
    /// Warning count of the last OK/EOF.
    pub warnings: u16,
    /// The last OK's insert id (an AUTO_INCREMENT value the statement generated, or 0).
    pub insert_id: u64,
    /// What the result said (rows and error code), when asked for (see [`ResultDigest`]).
    pub digest: u64,
}

/// What a result said, in 64 bits: the payloads of its rows, the affected rows and insert id
/// of its OK packets, and the code of its error, if any.
/// Column definitions and status flags are left out: servers of one replica set may describe
/// the same rows differently (a query plan flag, a length), and only the rows are data.
/// Fed in whatever pieces the bytes arrive in: the same bytes give the same digest.
pub struct ResultDigest(twox_hash::XxHash3_64);

impl Default for ResultDigest {
    fn default() -> Self {
        ResultDigest(twox_hash::XxHash3_64::with_seed(0))
    }
}

impl ResultDigest {
    pub fn row_bytes(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    /// An OK packet's affected rows and insert id: what a write did.
    pub fn ok(&mut self, ok_payload: &[u8]) {
        let mut r = lagless_protocol::lenenc::Reader::new(ok_payload);
        let affected = r.u8().and_then(|_| r.lenenc_int()).unwrap_or(0);
        let insert_id = r.lenenc_int().unwrap_or(0);
        self.0.write(&[0x00]);
        self.0.write(&affected.to_le_bytes());
        self.0.write(&insert_id.to_le_bytes());
    }

    pub fn error(&mut self, code: u16) {
        let [a, b] = code.to_le_bytes();
        self.0.write(&[0xFF, a, b]);
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Why a relay stopped early. `client_saw_bytes` tells whether a retry elsewhere is still
/// invisible to the client.
#[derive(Debug)]
pub struct RelayError {
    pub error: SessionError,
    pub client_saw_bytes: bool,
}

/// Where the walker is inside the current packet.
#[derive(Default)]
struct Walk {
    /// Payload bytes of the current chunk not yet walked past.
    skip: usize,
    /// The current chunk was 0xFFFFFF bytes long: the next header continues the same packet.
    continuation: bool,
    done: bool,
    /// The current packet is a row whose bytes go into the digest.
    digest_row: bool,
}

/// Relays the response to the command just sent to `backend`. `on_ok` sees the payload of every
/// OK packet (session tracking, last insert id) before the client does. With `digest`, the
/// result's [`ResultDigest`] comes back in [`Relayed::digest`]. With `divert_schema_lag`, a
/// response that is only an error which may mean schema lag
/// ([`lagless_routing::schema_lag`]) is read but not forwarded: it comes back as the
/// server's error (`SessionError::Backend` with `BackendError::Server`) in a [`RelayError`]
/// whose client saw nothing, the connection still usable, for the caller to run the statement
/// elsewhere. (Not a field of [`Relayed`]: a bigger `Relayed` made the relay future, moved on
/// every statement, cost a memcpy.)
///
/// # Errors
/// Backend or client I/O, or a response the tracker cannot follow; see [`RelayError`].
pub async fn relay_response(
    backend: &mut BackendConn,
    client: &mut ClientConn,
    expect: Expect,
    digest: bool,
    divert_schema_lag: bool,
    mut on_ok: impl FnMut(&[u8]),
) -> Result<Relayed, RelayError> {
    let mut digester = digest.then(ResultDigest::default);
    let mut tracker =
        ResponseTracker::new(expect, backend.capabilities & CLIENT_DEPRECATE_EOF != 0);
    let strip = client.capabilities & CLIENT_SESSION_TRACK == 0;
    let mut out = Relayed::default();
    let mut walk = Walk::default();
    let mut sent_any = false;
    backend.answering = false;
    let fail = |error, sent| RelayError {
        error,
        client_saw_bytes: sent,
    };
    loop {
        // Walk every complete header in the buffer; `start..pos` is ready to forward as is.
        let mut start = 0usize;
        let mut pos = 0usize;
        let mut local_infile = false;
        loop {
            let buf = &backend.buf[..];
            if walk.skip > 0 {
                let n = walk.skip.min(buf.len() - pos);
                if walk.digest_row {
                    if let Some(d) = digester.as_mut() {
                        d.row_bytes(&buf[pos..pos + n]);
                    }
                }
                pos += n;
                walk.skip -= n;
                if walk.skip > 0 {
                    break;
                }
            }
            if walk.done && !walk.continuation {
                break;
            }
            let Some((len, seq)) = read_header(&buf[pos..]) else {
                break;
            };
            if walk.continuation {
                pos += HEADER_LEN;
                walk.skip = len;
                walk.continuation = len == MAX_PAYLOAD;
                continue;
            }
            if len == 0 {
                let e = protocol_error(backend, "empty packet in a response");
                return Err(fail(e, sent_any));
            }
            let Some(&first) = buf.get(pos + HEADER_LEN) else {
                break;
            };
            if tracker.is_row(first, len) {
                // Most packets of a large result: forwarded as they are, nothing to learn.
                out.packets += 1;
                walk.continuation = len == MAX_PAYLOAD;
                walk.digest_row = digester.is_some();
                pos += HEADER_LEN;
                walk.skip = len;
                continue;
            }
            if divert_schema_lag && first == ERR_HEADER && out.packets == 0 {
                // The whole (small) error packet first: it may not reach the client.
                let Some(payload) = buf.get(pos + HEADER_LEN..pos + HEADER_LEN + len) else {
                    break;
                };
                let code = payload
                    .get(1..3)
                    .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
                if lagless_routing::schema_lag::may_be_schema_lag(code) {
                    let err = ErrPacket::parse(payload)
                        .map_err(|e| fail(protocol_error_from(backend, e), false))?;
                    let error = SessionError::refused(&backend.server_name, err);
                    backend.buf.advance(pos + HEADER_LEN + len);
                    return Err(fail(error, false));
                }
            }
            let need = tracker.bytes_needed(first, len);
            let Some(head) = buf.get(pos + HEADER_LEN..pos + HEADER_LEN + need) else {
                break;
            };
            let ev: Event = tracker
                .on_packet(head, len)
                .map_err(|e| fail(protocol_error_from(backend, e), sent_any))?;
            out.packets += 1;
            walk.continuation = len == MAX_PAYLOAD;
            walk.done = ev.done;
            walk.digest_row = digester.is_some() && ev.kind == PacketKind::Row;
            match ev.kind {
                PacketKind::Ok => {
                    on_ok(head);
                    if let Some(d) = digester.as_mut() {
                        d.ok(head);
                    }
                    out.status = ev.status.or(out.status);
                    (out.insert_id, out.warnings) = ok_counts(head);
                    let changed = ev
                        .status
                        .is_some_and(|s| s & SERVER_SESSION_STATE_CHANGED != 0);
                    if strip && changed {
                        if let Some(rewritten) = strip_session_state(head, backend.capabilities) {
                            // Forward what precedes, then the rebuilt packet in place of this one.
                            let mut framed =
                                bytes::BytesMut::with_capacity(rewritten.len() + HEADER_LEN);
                            write_header(&mut framed, rewritten.len(), seq);
                            framed.extend_from_slice(&rewritten);
                            let prefix = backend.buf[start..pos].to_vec();
                            backend.answering = true;
                            write_both(client, &prefix, &framed)
                                .await
                                .map_err(|e| fail(e, sent_any))?;
                            sent_any = true;
                            pos += HEADER_LEN + len;
                            start = pos;
                            continue;
                        }
                    }
                }
                PacketKind::Eof => {
                    out.status = ev.status.or(out.status);
                    // 0xFE, warnings (2), status (2).
                    out.warnings = head
                        .get(1..3)
                        .map_or(0, |w| u16::from_le_bytes([w[0], w[1]]));
                }
                PacketKind::Err => {
                    out.was_error = true;
                    if let (Some(d), Some(code)) = (digester.as_mut(), head.get(1..3)) {
                        d.error(u16::from_le_bytes([code[0], code[1]]));
                    }
                }
                PacketKind::LocalInfile => local_infile = true,
                _ => {}
            }
            pos += HEADER_LEN;
            walk.skip = len;
            if local_infile {
                pos += len;
                walk.skip = 0;
                break;
            }
        }
        if pos > start {
            backend.answering = true;
            client
                .write_framed(&backend.buf[start..pos])
                .await
                .map_err(|e| fail(e, sent_any))?;
            sent_any = true;
            out.bytes += (pos - start) as u64;
        }
        backend.buf.advance(pos);
        if local_infile {
            relay_local_infile(backend, client)
                .await
                .map_err(|e| fail(e, true))?;
            continue;
        }
        if walk.done && walk.skip == 0 && !walk.continuation {
            out.digest = digester.as_ref().map_or(0, ResultDigest::finish);
            return Ok(out);
        }
        backend.buf.reserve(READ_CHUNK);
        match backend.stream.read_buf(&mut backend.buf).await {
            Ok(0) => {
                let e = SessionError::BackendLost {
                    server: backend.server_name.clone(),
                };
                return Err(fail(e, sent_any));
            }
            Ok(_) => {}
            Err(_) => {
                let e = SessionError::BackendLost {
                    server: backend.server_name.clone(),
                };
                return Err(fail(e, sent_any));
            }
        }
    }
}

async fn write_both(client: &mut ClientConn, a: &[u8], b: &[u8]) -> Result<(), SessionError> {
    if !a.is_empty() {
        client.write_framed(a).await?;
    }
    client.write_framed(b).await
}

/// The server asked for a local file: relay the client's packets until its empty packet.
async fn relay_local_infile(
    backend: &mut BackendConn,
    client: &mut ClientConn,
) -> Result<(), SessionError> {
    loop {
        let Some(p) = client.read_packet().await? else {
            return Err(SessionError::ClientIo(
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        };
        let mut framed = bytes::BytesMut::with_capacity(p.payload.len() + HEADER_LEN);
        lagless_protocol::packet::encode_packet(p.seq, &p.payload, &mut framed);
        backend
            .stream
            .write_all(&framed)
            .await
            .map_err(|_| SessionError::BackendLost {
                server: backend.server_name.clone(),
            })?;
        if p.payload.is_empty() {
            return Ok(());
        }
    }
}

fn protocol_error(backend: &BackendConn, what: &'static str) -> SessionError {
    protocol_error_from(
        backend,
        lagless_protocol::ProtocolError::UnexpectedPacket(what),
    )
}

fn protocol_error_from(
    backend: &BackendConn,
    source: lagless_protocol::ProtocolError,
) -> SessionError {
    SessionError::BackendProtocol {
        server: backend.server_name.clone(),
        source,
    }
}

/// A whole (small) response read by the proxy for itself.
#[derive(Debug, Default)]
pub struct Reply {
    pub packets: Vec<lagless_protocol::packet::Packet>,
    /// The ERR packet that ended it, if any.
    pub error: Option<lagless_protocol::ok_err::ErrPacket>,
    /// Status flags of the last OK/EOF.
    pub status: Option<u16>,
}

/// Insert id and warning count of an OK packet: header, affected rows and insert id
/// (length-encoded), status (2), warnings (2).
fn ok_counts(ok: &[u8]) -> (u64, u16) {
    let mut r = lagless_protocol::lenenc::Reader::new(ok);
    let insert_id = r
        .u8()
        .and_then(|_| r.lenenc_int())
        .and_then(|_| r.lenenc_int());
    let warnings = r.u16().and_then(|_| r.u16());
    (insert_id.unwrap_or(0), warnings.unwrap_or(0))
}

/// Sends a command the proxy issues itself (session replay, on-demand prepare) and reads its
/// whole response. For small responses only: everything is kept in memory.
///
/// # Errors
/// I/O or protocol errors; the connection must then be dropped.
pub async fn command(
    backend: &mut BackendConn,
    payload: &[u8],
    expect: Expect,
) -> Result<Reply, SessionError> {
    let mut framed = bytes::BytesMut::with_capacity(payload.len() + HEADER_LEN);
    lagless_protocol::packet::encode_packet(0, payload, &mut framed);
    let lost = |b: &BackendConn| SessionError::BackendLost {
        server: b.server_name.clone(),
    };
    backend.clean = false;
    backend
        .stream
        .write_all(&framed)
        .await
        .map_err(|_| lost(backend))?;
    let reply = read_reply(backend, expect).await?;
    backend.clean = true;
    Ok(reply)
}

/// Reads a response to a command already sent without keeping it: its [`ResultDigest`] and
/// the status flags of its last OK/EOF.
///
/// # Errors
/// I/O or protocol errors; the connection must then be dropped.
pub async fn digest_reply(
    backend: &mut BackendConn,
    expect: Expect,
) -> Result<(u64, Option<u16>), SessionError> {
    let mut digest = ResultDigest::default();
    let mut status = None;
    read_packets(backend, expect, |kind, ev_status, p| match kind {
        PacketKind::Row => digest.row_bytes(&p.payload),
        PacketKind::Err => {
            if let Some(code) = p.payload.get(1..3) {
                digest.error(u16::from_le_bytes([code[0], code[1]]));
            }
        }
        PacketKind::Ok => {
            digest.ok(&p.payload);
            status = ev_status.or(status);
        }
        PacketKind::Eof => status = ev_status.or(status),
        _ => {}
    })
    .await?;
    Ok((digest.finish(), status))
}

/// Reads a whole response to a command already sent.
///
/// # Errors
/// I/O or protocol errors; the connection must then be dropped.
pub async fn read_reply(backend: &mut BackendConn, expect: Expect) -> Result<Reply, SessionError> {
    let mut reply = Reply::default();
    read_packets(backend, expect, |kind, status, p| {
        match kind {
            PacketKind::Err => {
                reply.error = lagless_protocol::ok_err::ErrPacket::parse(&p.payload).ok()
            }
            PacketKind::Ok | PacketKind::Eof => reply.status = status.or(reply.status),
            _ => {}
        }
        reply.packets.push(p);
    })
    .await?;
    Ok(reply)
}

/// Reads the packets of one response, handing each to `on_packet` with its kind and status.
async fn read_packets(
    backend: &mut BackendConn,
    expect: Expect,
    mut on_packet: impl FnMut(PacketKind, Option<u16>, lagless_protocol::packet::Packet),
) -> Result<(), SessionError> {
    let mut tracker =
        ResponseTracker::new(expect, backend.capabilities & CLIENT_DEPRECATE_EOF != 0);
    loop {
        while let Some(p) = lagless_protocol::packet::decode_packet(&mut backend.buf, 1 << 30)
            .map_err(|e| protocol_error_from(backend, e))?
        {
            let ev = tracker
                .on_packet(&p.payload, p.payload.len())
                .map_err(|e| protocol_error_from(backend, e))?;
            on_packet(ev.kind, ev.status, p);
            if ev.done {
                return Ok(());
            }
        }
        backend.buf.reserve(READ_CHUNK);
        match backend.stream.read_buf(&mut backend.buf).await {
            Ok(n) if n > 0 => {}
            _ => {
                return Err(SessionError::BackendLost {
                    server: backend.server_name.clone(),
                })
            }
        }
    }
}
