//! Property tests: framing and message roundtrips, and parsers never panicking on any input.

use bytes::BytesMut;
use lagless_protocol::auth::{AuthMoreData, AuthSwitchRequest};
use lagless_protocol::consts::*;
use lagless_protocol::handshake::{is_ssl_request, HandshakeResponse, InitialHandshake};
use lagless_protocol::lenenc::{put_lenenc_bytes, put_lenenc_int, Reader};
use lagless_protocol::ok_err::*;
use lagless_protocol::packet::{decode_packet, encode_packet, MAX_PAYLOAD};
use proptest::prelude::*;

/// Feeds `wire` to the decoder in pieces of the given sizes; returns the packets decoded.
fn decode_in_pieces(wire: &[u8], pieces: &[usize], max: usize) -> Vec<(u8, u8, Vec<u8>)> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    let mut sizes = pieces.iter().copied().cycle();
    while !rest.is_empty() || !buf.is_empty() {
        let n = sizes
            .next()
            .unwrap_or(1)
            .clamp(1, rest.len().max(1))
            .min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(p) = decode_packet(&mut buf, max).unwrap() {
            out.push((p.seq, p.last_seq, p.payload.to_vec()));
        }
        if rest.is_empty() {
            assert!(buf.is_empty(), "bytes left after the last packet");
            break;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn small_packets_roundtrip_in_any_pieces(
        payloads in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)), 1..8),
        pieces in prop::collection::vec(1usize..64, 1..8),
    ) {
        let mut wire = BytesMut::new();
        for (seq, p) in &payloads {
            let next = encode_packet(*seq, p, &mut wire);
            prop_assert_eq!(next, seq.wrapping_add(1));
        }
        let got = decode_in_pieces(&wire, &pieces, 300);
        let want: Vec<_> = payloads.iter().map(|(s, p)| (*s, *s, p.clone())).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn too_large_is_reported_not_buffered(len in 1usize..MAX_PAYLOAD, seq in any::<u8>()) {
        let b = (len as u32).to_le_bytes();
        let mut buf = BytesMut::from(&[b[0], b[1], b[2], seq][..]);
        prop_assert_eq!(
            decode_packet(&mut buf, len - 1),
            Err(lagless_protocol::ProtocolError::PacketTooLarge { len, max: len - 1 })
        );
        let mut buf = BytesMut::from(&[b[0], b[1], b[2], seq][..]);
        prop_assert_eq!(decode_packet(&mut buf, len), Ok(None));
    }

    #[test]
    fn lenenc_roundtrip(v in any::<u64>(), s in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut out = Vec::new();
        put_lenenc_int(&mut out, v);
        put_lenenc_bytes(&mut out, &s);
        let mut r = Reader::new(&out);
        prop_assert_eq!(r.lenenc_int().unwrap(), v);
        prop_assert_eq!(r.lenenc_bytes().unwrap(), &s[..]);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn ok_roundtrip(
        header in prop::sample::select(vec![0x00u8, 0xfe]),
        affected in any::<u64>(), id in any::<u64>(), status in any::<u16>(), warnings in any::<u16>(),
        info in prop::collection::vec(any::<u8>(), 0..40),
        state in prop::collection::vec(any::<u8>(), 0..40),
        track in any::<bool>(),
    ) {
        let caps = CLIENT_PROTOCOL_41 | if track { CLIENT_SESSION_TRACK } else { 0 };
        let changed = track && status & SERVER_SESSION_STATE_CHANGED != 0;
        let ok = OkPacket {
            header, affected_rows: affected, last_insert_id: id, status, warnings, info,
            session_state: if changed { state } else { Vec::new() },
        };
        let enc = ok.encode(caps);
        prop_assert_eq!(OkPacket::parse(&enc, caps).unwrap(), ok.clone());
        if track {
            let stripped = strip_session_state(&enc, caps).unwrap_or(enc);
            let back = OkPacket::parse(&stripped, CLIENT_PROTOCOL_41).unwrap();
            prop_assert_eq!(back.info, ok.info);
            prop_assert_eq!(back.status, ok.status & !SERVER_SESSION_STATE_CHANGED);
        }
    }

    #[test]
    fn handshake_response_roundtrip(
        caps in any::<u64>(),
        user in "[a-z_]{0,16}", db in "[a-z]{1,16}", plugin in "[a-z_]{0,24}",
        auth in prop::collection::vec(1u8..=255, 0..40),
        attrs in prop::collection::vec(("[a-z_]{0,8}", "[ -~]{0,12}"), 0..4),
        max_packet in any::<u32>(), charset in any::<u8>(),
    ) {
        let mut caps = caps | CLIENT_PROTOCOL_41;
        if caps & CLIENT_MYSQL != 0 {
            caps &= BASE_CAPS_MASK;
        }
        let r = HandshakeResponse {
            capabilities: caps, max_packet, charset, username: user, auth_response: auth,
            database: (caps & CLIENT_CONNECT_WITH_DB != 0).then_some(db),
            auth_plugin: (caps & CLIENT_PLUGIN_AUTH != 0).then_some(plugin),
            connect_attrs: if caps & CLIENT_CONNECT_ATTRS != 0 { attrs } else { Vec::new() },
        };
        prop_assert_eq!(HandshakeResponse::parse(&r.encode()).unwrap(), r);
    }

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), caps in any::<u64>()) {
        parse_everything(&bytes, caps);
    }

    #[test]
    fn parsers_never_panic_on_mutated_valid_packets(
        which in 0usize..5, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(), caps in any::<u64>(),
    ) {
        let mut p = valid_samples().swap_remove(which);
        for (i, b) in flips {
            if !p.is_empty() {
                let i = i.index(p.len());
                p[i] = b;
            }
        }
        p.truncate(cut.index(p.len() + 1));
        parse_everything(&p, caps);
    }
}

fn valid_samples() -> Vec<Vec<u8>> {
    let ok = b"\x00\x01\x00\x02\x40\x00\x00\x00\x13\x00\x11\x09last_gtid\x060-1-12".to_vec();
    let hs = InitialHandshake {
        server_version: "5.5.5-10.11.19-MariaDB-0+deb12u1-log".into(),
        connection_id: 5,
        scramble: [7; 20],
        capabilities: 0x81ff_f7fe | 0x1d << 32,
        charset: 45,
        status: 2,
        auth_plugin: "mysql_native_password".into(),
    }
    .encode();
    let resp = HandshakeResponse {
        capabilities: 0x81ff_f7fe | CLIENT_CONNECT_WITH_DB | CLIENT_CONNECT_ATTRS,
        max_packet: 1 << 24,
        charset: 45,
        username: "u".into(),
        auth_response: vec![1; 20],
        database: Some("d".into()),
        auth_plugin: Some("mysql_native_password".into()),
        connect_attrs: vec![("a".into(), "b".into())],
    }
    .encode();
    let err = ErrPacket::new(ER_ACCESS_DENIED_ERROR, "denied").encode();
    let switch = AuthSwitchRequest {
        plugin: "caching_sha2_password".into(),
        data: vec![3; 21],
    }
    .encode();
    vec![ok, hs, resp, err, switch]
}

fn parse_everything(bytes: &[u8], caps: u64) {
    for max in [0, 16, 1 << 20] {
        let mut buf = BytesMut::from(bytes);
        while let Ok(Some(_)) = decode_packet(&mut buf, max) {}
    }
    let _ = InitialHandshake::parse(bytes);
    let _ = HandshakeResponse::parse(bytes);
    let _ = is_ssl_request(bytes);
    if let Ok(ok) = OkPacket::parse(bytes, caps) {
        let _ = ok.last_gtid();
        let _ = ok.encode(caps);
    }
    let _ = strip_session_state(bytes, caps);
    let _ = ErrPacket::parse(bytes);
    let _ = EofPacket::parse(bytes);
    let _ = AuthSwitchRequest::parse(bytes);
    let _ = AuthMoreData::parse(bytes);
    let _ = session_changes(bytes).count();
    let mut r = Reader::new(bytes);
    while r.lenenc_bytes_or_null().is_ok() && !r.is_empty() {}
}

/// The real 16 MiB boundary: sizes just below, at and above multiples of 0xFFFFFF.
#[test]
fn sixteen_mib_boundary_roundtrip() {
    let big: Vec<u8> = (0..2 * MAX_PAYLOAD + 2).map(|i| (i % 253) as u8).collect();
    for (len, chunks) in [
        (MAX_PAYLOAD - 1, 1usize),
        (MAX_PAYLOAD, 2),
        (MAX_PAYLOAD + 1, 2),
        (2 * MAX_PAYLOAD, 3),
        (2 * MAX_PAYLOAD + 1, 3),
    ] {
        let payload = &big[..len];
        let mut wire = BytesMut::new();
        let next = encode_packet(254, payload, &mut wire);
        assert_eq!(next, 254u8.wrapping_add(chunks as u8), "len {len}");
        assert_eq!(wire.len(), len + 4 * chunks);
        // Arrives in 1 MiB reads, followed by a small packet.
        encode_packet(0, b"next", &mut wire);
        let got = decode_in_pieces(&wire, &[1 << 20], len);
        assert_eq!(got.len(), 2);
        let (seq, last_seq, p) = &got[0];
        assert_eq!(
            (*seq, *last_seq),
            (254, 254u8.wrapping_add(chunks as u8 - 1))
        );
        assert!(p[..] == payload[..], "payload of {len} bytes differs");
        assert_eq!(got[1], (0, 0, b"next".to_vec()));
    }
}

proptest! {
    // Each case moves 16-32 MiB: keep the count low.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn boundary_sizes_roundtrip(
        base in prop::sample::select(vec![MAX_PAYLOAD, 2 * MAX_PAYLOAD]),
        delta in -3i64..=3, seq in any::<u8>(), piece in (1usize << 16)..(4 << 20), fill in any::<u8>(),
    ) {
        let len = (base as i64 + delta) as usize;
        let mut payload = vec![fill; len];
        if let Some(last) = payload.last_mut() {
            *last = fill.wrapping_add(1);
        }
        let mut wire = BytesMut::new();
        let chunks = len / MAX_PAYLOAD + 1;
        prop_assert_eq!(encode_packet(seq, &payload, &mut wire), seq.wrapping_add(chunks as u8));
        let got = decode_in_pieces(&wire, &[piece], len);
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!((got[0].0, got[0].1), (seq, seq.wrapping_add(chunks as u8 - 1)));
        prop_assert!(got[0].2 == payload);
        // One byte less allowed: refused as soon as the headers tell.
        let mut buf = BytesMut::from(&wire[..]);
        let too_large = matches!(
            decode_packet(&mut buf, len - 1),
            Err(lagless_protocol::ProtocolError::PacketTooLarge { .. })
        );
        prop_assert!(too_large);
    }
}
