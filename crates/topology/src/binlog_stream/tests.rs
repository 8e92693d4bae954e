use lagless_routing::gtid::MariaGtid;

use super::events::*;

/// An event: header (server id, type) + body, with a CRC32 trailer when `crc`.
fn event(event_type: u8, server_id: u32, body: &[u8], crc: bool) -> Vec<u8> {
    let size = (HEADER_LEN + body.len() + if crc { 4 } else { 0 }) as u32;
    let mut e = Vec::new();
    e.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    e.push(event_type);
    e.extend_from_slice(&server_id.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&1234u32.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(body);
    if crc {
        let c = crc32(&e);
        e.extend_from_slice(&c.to_le_bytes());
    }
    e
}

fn gtid_body(seq: u64, domain: u32) -> Vec<u8> {
    let mut b = seq.to_le_bytes().to_vec();
    b.extend_from_slice(&domain.to_le_bytes());
    b.push(0x01); // FL_STANDALONE
    b.extend_from_slice(&[0; 6]);
    b
}

/// A packet of the dump connection: 3-byte length, sequence, 0x00, event.
fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut p = len.to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend_from_slice(payload);
    p
}

fn ok_packet(seq: u8, ev: &[u8]) -> Vec<u8> {
    let mut payload = vec![0u8];
    payload.extend_from_slice(ev);
    packet(seq, &payload)
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn parses_a_gtid_event_with_and_without_checksum() {
    for crc in [false, true] {
        let ev = event(GTID_EVENT, 7, &gtid_body(123_456_789_012, 3), crc);
        let (h, e) = parse_event(&ev, crc).unwrap();
        assert_eq!(h.event_type, GTID_EVENT);
        assert_eq!(h.server_id, 7);
        assert_eq!(h.log_pos, 1234);
        assert_eq!(e, Event::Gtid(MariaGtid::new(3, 7, 123_456_789_012)));
    }
}

#[test]
fn a_corrupt_checksum_or_a_short_event_is_an_error() {
    let mut ev = event(GTID_EVENT, 1, &gtid_body(5, 0), true);
    ev[HEADER_LEN] ^= 1;
    assert!(matches!(
        parse_event(&ev, true),
        Err(EventError::Checksum { .. })
    ));
    let short = event(GTID_EVENT, 1, &[1, 2, 3], false);
    assert!(matches!(
        parse_event(&short, false),
        Err(EventError::Truncated { .. })
    ));
    assert!(parse_event(&[0; 10], false).is_err());
    let mut wrong_size = event(GTID_EVENT, 1, &gtid_body(5, 0), false);
    wrong_size.push(0);
    assert!(matches!(
        parse_event(&wrong_size, false),
        Err(EventError::SizeMismatch { .. })
    ));
}

#[test]
fn parses_a_gtid_list() {
    let mut body = 2u32.to_le_bytes().to_vec();
    for (d, s, n) in [(0u32, 1u32, 100u64), (1, 2, 7)] {
        body.extend_from_slice(&d.to_le_bytes());
        body.extend_from_slice(&s.to_le_bytes());
        body.extend_from_slice(&n.to_le_bytes());
    }
    let ev = event(GTID_LIST_EVENT, 1, &body, true);
    let (_, e) = parse_event(&ev, true).unwrap();
    assert_eq!(
        e,
        Event::GtidList(vec![MariaGtid::new(0, 1, 100), MariaGtid::new(1, 2, 7)])
    );
    // A count larger than the body.
    let mut lying = 3u32.to_le_bytes().to_vec();
    lying.extend_from_slice(&body[4..]);
    assert!(parse_event(&event(GTID_LIST_EVENT, 1, &lying, false), false).is_err());
}

#[test]
fn format_description_gives_the_checksum_algorithm() {
    let mut body = 4u16.to_le_bytes().to_vec();
    body.extend_from_slice(&[b'x'; 50]);
    body.extend_from_slice(&0u32.to_le_bytes());
    body.push(19);
    body.extend_from_slice(&[0; 10]); // post-header lengths
    body.push(CHECKSUM_CRC32);
    let ev = event(FORMAT_DESCRIPTION_EVENT, 1, &body, true);
    assert_eq!(
        parse_event(&ev, false).unwrap().1,
        Event::FormatDescription {
            checksum: CHECKSUM_CRC32
        }
    );
}

#[test]
fn rotate_heartbeat_and_others() {
    let mut body = 4u64.to_le_bytes().to_vec();
    body.extend_from_slice(b"mysql-bin.000002");
    let (_, e) = parse_event(&event(ROTATE_EVENT, 1, &body, false), false).unwrap();
    assert_eq!(
        e,
        Event::Rotate {
            file: "mysql-bin.000002".into(),
            position: 4
        }
    );
    let (_, e) = parse_event(
        &event(HEARTBEAT_LOG_EVENT, 1, b"mysql-bin.000002", true),
        true,
    )
    .unwrap();
    assert_eq!(e, Event::Heartbeat);
    let (_, e) = parse_event(&event(XID_EVENT, 1, &9u64.to_le_bytes(), true), true).unwrap();
    assert_eq!(e, Event::Other(XID_EVENT));
}

#[test]
fn framer_splits_packets_keeps_small_events_and_skips_others() {
    let gtid = event(GTID_EVENT, 1, &gtid_body(42, 0), true);
    let rows = event(0x17, 1, &vec![0xab; 5000], true); // WRITE_ROWS: skipped
    let mut err = vec![0xff];
    err.extend_from_slice(&1236u16.to_le_bytes());
    err.extend_from_slice(b"#HY000boom");
    let mut wire = ok_packet(1, &gtid);
    wire.extend(ok_packet(2, &rows));
    wire.extend(ok_packet(3, &gtid));
    wire.extend(packet(4, &err));
    wire.extend(packet(5, &[0xfe, 0, 0, 2, 0]));
    // Fed one byte at a time and all at once, the frames are the same.
    for chunk in [1usize, 7, wire.len()] {
        let mut buf = StreamBuf::default();
        let mut framer = Framer::default();
        let mut frames = Vec::new();
        for part in wire.chunks(chunk) {
            buf.data.extend_from_slice(part);
            while let Some(f) = framer.next(&mut buf) {
                frames.push(f);
            }
            buf.compact();
        }
        assert_eq!(
            frames,
            vec![
                Frame::Event(gtid.clone()),
                Frame::Skipped(0x17),
                Frame::Event(gtid.clone()),
                Frame::Err(err.clone()),
                Frame::Eof,
            ],
            "chunk {chunk}"
        );
        assert!(buf.unread().is_empty());
    }
}

#[test]
fn framer_skips_a_split_packet_and_its_continuations() {
    // A 16 MiB row event: a full 0xFFFFFF packet, then a continuation packet.
    let full = 0xff_ffff;
    let mut first = vec![0u8; 4 + full];
    first[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
    first[4] = 0; // OK byte
    first[9] = 0x17; // event type
    let mut wire = first;
    wire.extend(packet(1, &[0xcd; 100])); // continuation
    let gtid = event(GTID_EVENT, 1, &gtid_body(43, 0), false);
    wire.extend(ok_packet(2, &gtid));
    let mut buf = StreamBuf::default();
    let mut framer = Framer::default();
    let mut frames = Vec::new();
    for part in wire.chunks(1 << 20) {
        buf.data.extend_from_slice(part);
        while let Some(f) = framer.next(&mut buf) {
            frames.push(f);
        }
        buf.compact();
        assert!(buf.data.len() <= 1 << 20, "skipped bytes are not kept");
    }
    assert_eq!(frames, vec![Frame::Skipped(0x17), Frame::Event(gtid)]);
}
