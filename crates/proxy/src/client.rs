//! The client socket: whole commands in, packets out.

use bytes::BytesMut;
use lagless_backend::NetStream;
use lagless_protocol::ok_err::{ErrPacket, OkPacket};
use lagless_protocol::packet::{decode_packet, encode_packet, Packet};
use lagless_protocol::ProtocolError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::SessionError;

/// Small, so that thousands of idle clients cost little memory; a packet longer than this is
/// read with a buffer sized from its header.
const READ_CHUNK: usize = 4 * 1024;
/// The most reserved at once for the rest of a long packet.
const READ_MAX_STEP: usize = 1 << 20;

/// A connected client with its read buffer and negotiated capabilities.
pub struct ClientConn {
    pub stream: NetStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Capabilities both sides agreed on (set after the handshake).
    pub capabilities: u64,
    max_packet: usize,
}

impl ClientConn {
    pub fn new(stream: NetStream, max_packet: usize) -> Self {
        ClientConn {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(1024),
            capabilities: 0,
            max_packet,
        }
    }

    /// Reads one logical packet. `Ok(None)` is a clean close between packets.
    ///
    /// # Errors
    /// I/O errors, a close in the middle of a packet, or a packet over max_allowed_packet
    /// (detected from its header, before its bytes are read).
    pub async fn read_packet(&mut self) -> Result<Option<Packet>, SessionError> {
        loop {
            match decode_packet(&mut self.rbuf, self.max_packet) {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(ProtocolError::PacketTooLarge { len, max }) => {
                    return Err(SessionError::ClientPacketTooLarge { len, max })
                }
                Err(e) => return Err(SessionError::ClientProtocol(e)),
            }
            self.rbuf.reserve(self.wanted());
            let n = self
                .stream
                .read_buf(&mut self.rbuf)
                .await
                .map_err(SessionError::ClientIo)?;
            if n == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(SessionError::ClientProtocol(ProtocolError::Truncated))
                };
            }
        }
    }

    /// How much to read next: the rest of a packet whose header is in, else a small chunk.
    fn wanted(&self) -> usize {
        match self.rbuf.get(..3) {
            Some(h) => {
                let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                (len + 4)
                    .saturating_sub(self.rbuf.len())
                    .clamp(READ_CHUNK, READ_MAX_STEP)
            }
            None => READ_CHUNK,
        }
    }

    /// Queues a packet; [`flush`](Self::flush) sends what is queued.
    pub fn queue(&mut self, seq: u8, payload: &[u8]) -> u8 {
        encode_packet(seq, payload, &mut self.wbuf)
    }

    pub fn queue_ok(&mut self, seq: u8, ok: &OkPacket) -> u8 {
        let payload = ok.encode(self.capabilities);
        self.queue(seq, &payload)
    }

    pub fn queue_err(&mut self, seq: u8, err: &ErrPacket) -> u8 {
        let payload = err.encode();
        self.queue(seq, &payload)
    }

    /// # Errors
    /// I/O errors writing to the client.
    pub async fn flush(&mut self) -> Result<(), SessionError> {
        if !self.wbuf.is_empty() {
            self.stream
                .write_all(&self.wbuf)
                .await
                .map_err(SessionError::ClientIo)?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Writes bytes that are already framed (relayed from a backend), after anything queued.
    ///
    /// # Errors
    /// I/O errors writing to the client.
    pub async fn write_framed(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.flush().await?;
        self.stream
            .write_all(bytes)
            .await
            .map_err(SessionError::ClientIo)
    }

    /// Half-closes the connection and reads and drops input until the client closes its side or
    /// `limit` bytes have been dropped.
    pub async fn discard_input(&mut self, limit: usize) {
        let _ = self.stream.shutdown().await;
        let mut dropped = self.rbuf.len();
        self.rbuf.clear();
        let mut chunk = vec![0u8; 64 * 1024];
        while dropped < limit {
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            }
        }
    }

    pub fn has(&self, capability: u64) -> bool {
        self.capabilities & capability != 0
    }
}
