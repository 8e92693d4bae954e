//! Packet framing: a 4-byte header (3-byte little-endian length, 1-byte sequence id) and payloads
//! of up to 16 MiB - 1 per chunk. A logical payload of 0xFFFFFF bytes or more is split into
//! full chunks followed by a shorter (possibly empty) one.

use bytes::{BufMut, Bytes, BytesMut};

use crate::ProtocolError;

/// Largest payload one chunk can carry; a chunk of exactly this size means "more follows".
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Size of a packet header.
pub const HEADER_LEN: usize = 4;

/// One logical packet, continuation chunks joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first chunk.
    pub seq: u8,
    /// Sequence id of the last chunk (equals `seq` unless the packet was split).
    pub last_seq: u8,
    pub payload: Bytes,
}

/// Reads a header from the start of `buf`: `(payload length, sequence id)`.
#[inline]
pub fn read_header(buf: &[u8]) -> Option<(usize, u8)> {
    match buf {
        [a, b, c, seq, ..] => Some((
            usize::from(*a) | usize::from(*b) << 8 | usize::from(*c) << 16,
            *seq,
        )),
        _ => None,
    }
}

/// Writes a header for a chunk of `len` bytes (`len` must be at most [`MAX_PAYLOAD`]).
#[inline]
pub fn write_header(out: &mut impl BufMut, len: usize, seq: u8) {
    debug_assert!(len <= MAX_PAYLOAD);
    let len = (len.min(MAX_PAYLOAD) as u32).to_le_bytes();
    out.put_slice(&[len[0], len[1], len[2], seq]);
}

/// Takes one complete logical packet off the front of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed (nothing is consumed then). A single-chunk packet
/// is split off without copying. Fails with [`ProtocolError::PacketTooLarge`] as soon as the
/// headers seen so far announce more than `max_payload` bytes in total, before the bytes arrive.
pub fn decode_packet(
    buf: &mut BytesMut,
    max_payload: usize,
) -> Result<Option<Packet>, ProtocolError> {
    let Some((len, seq)) = read_header(buf) else {
        return Ok(None);
    };
    if len > max_payload {
        return Err(ProtocolError::PacketTooLarge {
            len,
            max: max_payload,
        });
    }
    if len < MAX_PAYLOAD {
        if buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let mut chunk = buf.split_to(HEADER_LEN + len);
        let _ = chunk.split_to(HEADER_LEN);
        return Ok(Some(Packet {
            seq,
            last_seq: seq,
            payload: chunk.freeze(),
        }));
    }

    // Split packet: walk the chunk headers until the short one, without consuming anything.
    let mut off = 0usize;
    let mut total = 0usize;
    let mut expect = seq;
    let last_seq = loop {
        let Some((len, s)) = buf.get(off..).and_then(read_header) else {
            return Ok(None);
        };
        if s != expect {
            return Err(ProtocolError::Malformed("out-of-order continuation packet"));
        }
        total += len;
        if total > max_payload {
            return Err(ProtocolError::PacketTooLarge {
                len: total,
                max: max_payload,
            });
        }
        if buf.len() < off + HEADER_LEN + len {
            return Ok(None);
        }
        off += HEADER_LEN + len;
        expect = s.wrapping_add(1);
        if len < MAX_PAYLOAD {
            break s;
        }
    };
    let raw = buf.split_to(off);
    let mut payload = BytesMut::with_capacity(total);
    let mut rest = &raw[..];
    while let Some((len, _)) = read_header(rest) {
        let end = HEADER_LEN + len;
        let Some(chunk) = rest.get(HEADER_LEN..end) else {
            break;
        };
        payload.extend_from_slice(chunk);
        rest = &rest[end..];
    }
    Ok(Some(Packet {
        seq,
        last_seq,
        payload: payload.freeze(),
    }))
}

/// Appends `payload` as packets starting at sequence id `seq`; returns the next sequence id.
///
/// Payloads of [`MAX_PAYLOAD`] bytes or more are split, with a trailing empty packet when the
/// length is an exact multiple of [`MAX_PAYLOAD`].
pub fn encode_packet(seq: u8, payload: &[u8], out: &mut BytesMut) -> u8 {
    out.reserve(payload.len() + HEADER_LEN * (1 + payload.len() / MAX_PAYLOAD));
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        write_header(out, n, seq);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        seq = seq.wrapping_add(1);
        if n < MAX_PAYLOAD {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(seq: u8, payload: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        encode_packet(seq, payload, &mut b);
        b
    }

    #[test]
    fn header_roundtrip() {
        let mut b = BytesMut::new();
        write_header(&mut b, 0x12_3456, 7);
        assert_eq!(&b[..], &[0x56, 0x34, 0x12, 7]);
        assert_eq!(read_header(&b), Some((0x12_3456, 7)));
        assert_eq!(read_header(&b[..3]), None);
    }

    #[test]
    fn decodes_single_and_waits_for_more() {
        let full = raw(3, b"hello");
        for cut in 0..full.len() {
            let mut b = BytesMut::from(&full[..cut]);
            assert_eq!(decode_packet(&mut b, 100).unwrap(), None);
            assert_eq!(b.len(), cut, "nothing consumed on a partial packet");
        }
        let mut b = full.clone();
        b.extend_from_slice(&[1, 0, 0, 9]);
        let p = decode_packet(&mut b, 100).unwrap().unwrap();
        assert_eq!((p.seq, p.last_seq, &p.payload[..]), (3, 3, &b"hello"[..]));
        assert_eq!(
            &b[..],
            &[1, 0, 0, 9],
            "next packet's bytes stay in the buffer"
        );
    }

    #[test]
    fn empty_payload() {
        let mut b = raw(0, b"");
        assert_eq!(&b[..], &[0, 0, 0, 0]);
        let p = decode_packet(&mut b, 0).unwrap().unwrap();
        assert!(p.payload.is_empty());
        assert!(b.is_empty());
    }

    #[test]
    fn too_large_before_bytes_arrive() {
        let mut b = BytesMut::from(&[0x10, 0, 0, 0][..]);
        assert_eq!(
            decode_packet(&mut b, 15),
            Err(ProtocolError::PacketTooLarge { len: 16, max: 15 })
        );
        // A continuation header alone is enough to know a split packet is too big.
        let mut b = BytesMut::from(&[0xff, 0xff, 0xff, 0][..]);
        assert_eq!(
            decode_packet(&mut b, 1000),
            Err(ProtocolError::PacketTooLarge {
                len: MAX_PAYLOAD,
                max: 1000
            })
        );
    }

    #[test]
    fn split_packets_exact_multiple_and_beyond() {
        for extra in [0usize, 1, 5] {
            let payload: Vec<u8> = (0..MAX_PAYLOAD + extra).map(|i| (i % 251) as u8).collect();
            let mut b = BytesMut::new();
            let next = encode_packet(250, &payload, &mut b);
            assert_eq!(
                next, 252,
                "two chunks for {extra} extra bytes (trailing empty one at 0)"
            );
            assert_eq!(b.len(), payload.len() + 8);
            // Not enough with the last chunk (or its header) missing one byte.
            let mut short = BytesMut::from(&b[..b.len() - 1]);
            assert_eq!(decode_packet(&mut short, usize::MAX).unwrap(), None);
            let max = MAX_PAYLOAD + extra - 1;
            assert_eq!(
                decode_packet(&mut b.clone(), max),
                Err(ProtocolError::PacketTooLarge {
                    len: MAX_PAYLOAD + extra,
                    max
                })
            );
            let p = decode_packet(&mut b, MAX_PAYLOAD + extra).unwrap().unwrap();
            assert_eq!((p.seq, p.last_seq), (250, 251));
            assert!(p.payload[..] == payload[..]);
            assert!(b.is_empty());
        }
    }

    #[test]
    fn rejects_out_of_order_continuation() {
        let mut b = BytesMut::new();
        write_header(&mut b, MAX_PAYLOAD, 0);
        b.extend_from_slice(&vec![0u8; MAX_PAYLOAD]);
        write_header(&mut b, 0, 5);
        assert!(matches!(
            decode_packet(&mut b, usize::MAX),
            Err(ProtocolError::Malformed(_))
        ));
    }
}
