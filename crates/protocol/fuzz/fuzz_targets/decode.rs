//! Arbitrary bytes into every parser that sees network input: none may panic.
#![no_main]

use bytes::BytesMut;
use lagless_protocol::auth::{AuthMoreData, AuthSwitchRequest};
use lagless_protocol::handshake::{is_ssl_request, HandshakeResponse, InitialHandshake};
use lagless_protocol::ok_err::{
    session_changes, strip_session_state, EofPacket, ErrPacket, OkPacket,
};
use lagless_protocol::packet::decode_packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes pick the capabilities the OK parser assumes.
    let caps = data
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        .unwrap_or(0);

    for max in [16usize, 1 << 20] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(p)) = decode_packet(&mut buf, max) {
            let _ = OkPacket::parse(&p.payload, caps);
        }
    }
    let _ = InitialHandshake::parse(data);
    let _ = HandshakeResponse::parse(data);
    let _ = is_ssl_request(data);
    if let Ok(ok) = OkPacket::parse(data, caps) {
        let _ = ok.last_gtid();
        for change in session_changes(&ok.session_state) {
            let _ = change;
        }
    }
    let _ = strip_session_state(data, caps);
    let _ = ErrPacket::parse(data);
    let _ = EofPacket::parse(data);
    let _ = AuthSwitchRequest::parse(data);
    let _ = AuthMoreData::parse(data);
    for change in session_changes(data) {
        let _ = change;
    }
});
