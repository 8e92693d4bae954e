//! Whole-packet reads and writes on an async stream.

use bytes::BytesMut;
use lagless_protocol::packet::{decode_packet, encode_packet, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::BackendError;

/// Reads one logical packet, reading from `stream` into `buf` as needed. Bytes past the packet
/// stay in `buf`.
pub async fn read_packet<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    max_payload: usize,
) -> Result<Packet, BackendError> {
    loop {
        if let Some(p) = decode_packet(buf, max_payload)? {
            return Ok(p);
        }
        buf.reserve(16 * 1024);
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|e| BackendError::io("read from backend", e))?;
        if n == 0 {
            return Err(BackendError::io(
                "read from backend",
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
    }
}

/// Writes `payload` as packets from sequence id `seq`; returns the next sequence id.
pub async fn write_packet<S: AsyncWrite + Unpin>(
    stream: &mut S,
    seq: u8,
    payload: &[u8],
) -> Result<u8, BackendError> {
    let mut out = BytesMut::with_capacity(payload.len() + 4);
    let next = encode_packet(seq, payload, &mut out);
    stream
        .write_all(&out)
        .await
        .map_err(|e| BackendError::io("write to backend", e))?;
    Ok(next)
}
