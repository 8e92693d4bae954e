use lagless_routing::gtid::MariaGtid;

use super::events::*;
use super::groups::GroupTracker;

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
        assert_eq!(
            e,
            Event::Gtid {
                gtid: MariaGtid::new(3, 7, 123_456_789_012),
                standalone: true
            }
        );
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
    let (_, e) = parse_event(&event(0x13, 1, &9u64.to_le_bytes(), true), true).unwrap();
    assert_eq!(e, Event::Other(0x13)); // TABLE_MAP: not parsed
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

/// A query event's body: thread id, exec time, schema length, error code, status variables
/// (3 bytes here), schema "app", 0x00, the statement.
fn query_body(sql: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&9u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.push(3);
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(&[0, 1, 2]);
    b.extend_from_slice(b"app\0");
    b.extend_from_slice(sql.as_bytes());
    b
}

#[test]
fn a_query_event_ends_a_group_only_as_commit_or_rollback() {
    for crc in [false, true] {
        for (sql, ends) in [
            ("COMMIT", true),
            (" rollback ", true),
            ("INSERT INTO t VALUES (1)", false),
            ("BEGIN", false),
            ("COMMIT_LOG", false),
        ] {
            let ev = event(QUERY_EVENT, 1, &query_body(sql), crc);
            let (_, e) = parse_event(&ev, crc).unwrap();
            assert_eq!(e, Event::Query { ends_group: ends }, "{sql}");
        }
    }
    // Status variables longer than the event: an error, not a panic.
    let mut lying = query_body("COMMIT");
    lying[11] = 0xff;
    assert!(parse_event(&event(QUERY_EVENT, 1, &lying, false), false).is_err());
    assert_eq!(
        parse_event(&event(XID_EVENT, 1, &7u64.to_le_bytes(), true), true)
            .unwrap()
            .1,
        Event::Xid
    );
}

/// An event header at `end` (the position after the event), `size` bytes long.
fn at(event_type: u8, end: u32, size: u32, artificial: bool) -> EventHeader {
    EventHeader {
        timestamp: 0,
        event_type,
        server_id: 1,
        event_size: size,
        log_pos: end,
        flags: if artificial {
            LOG_EVENT_ARTIFICIAL_F
        } else {
            0
        },
    }
}

fn gtid(seq: u64, standalone: bool) -> Event {
    Event::Gtid {
        gtid: MariaGtid::new(0, 1, seq),
        standalone,
    }
}

fn rotate(file: &str) -> Event {
    Event::Rotate {
        file: file.into(),
        position: 4,
    }
}

#[test]
fn the_group_tracker_publishes_where_each_transaction_ends() {
    let before: lagless_routing::gtid::MariaPos = "0-1-10".parse().unwrap();
    let mut t = GroupTracker::new(before);
    // The dump's first, made-up rotate names the file; nothing ended yet.
    assert!(!t.event(&at(ROTATE_EVENT, 0, 40, true), &rotate("bin.000003")));
    assert_eq!(t.position(), None);
    // A transaction: GTID, rows (skipped, never seen), XID.
    assert!(!t.event(&at(GTID_EVENT, 1100, 40, false), &gtid(11, false)));
    assert!(!t.event(
        &at(QUERY_EVENT, 1200, 100, false),
        &Event::Query { ends_group: false }
    ));
    assert_eq!(
        t.position(),
        None,
        "a statement inside a transaction ends nothing"
    );
    assert!(t.event(&at(XID_EVENT, 1500, 31, false), &Event::Xid));
    let p = t.position().unwrap();
    assert_eq!((p.pos.file.as_str(), p.pos.pos), ("bin.000003", 1500));
    assert_eq!(p.through.to_string(), "0-1-11");
    // A standalone group (DDL): ends with its one statement.
    assert!(!t.event(&at(GTID_EVENT, 1540, 40, false), &gtid(12, true)));
    assert!(t.event(
        &at(QUERY_EVENT, 1700, 160, false),
        &Event::Query { ends_group: false }
    ));
    assert_eq!(t.position().unwrap().pos.pos, 1700);
    // Non-transactional changes: a COMMIT query ends the group.
    t.event(&at(GTID_EVENT, 1740, 40, false), &gtid(13, false));
    t.event(
        &at(QUERY_EVENT, 1800, 60, false),
        &Event::Query { ends_group: false },
    );
    assert!(t.event(
        &at(QUERY_EVENT, 1850, 50, false),
        &Event::Query { ends_group: true }
    ));
    assert_eq!(t.position().unwrap().through.to_string(), "0-1-13");
    // An end the tracker does not recognise (XA PREPARE): found where the next group starts,
    // not earlier.
    t.event(&at(GTID_EVENT, 1890, 40, false), &gtid(14, false));
    assert!(!t.event(&at(0xa6, 2000, 110, false), &Event::Other(0xa6)));
    assert_eq!(t.position().unwrap().through.to_string(), "0-1-13");
    assert!(t.event(&at(GTID_EVENT, 2040, 40, false), &gtid(15, false)));
    let p = t.position().unwrap();
    assert_eq!((p.pos.pos, p.through.to_string()), (2000, "0-1-14".into()));
    // A real rotate closes the file; the next file's positions follow it.
    assert!(t.event(&at(ROTATE_EVENT, 2100, 60, false), &rotate("bin.000004")));
    assert_eq!(t.position().unwrap().pos.pos, 2100);
    t.event(&at(GTID_EVENT, 400, 40, false), &gtid(16, false));
    assert!(t.event(&at(XID_EVENT, 600, 31, false), &Event::Xid));
    let p = t.position().unwrap();
    assert_eq!((p.pos.file.as_str(), p.pos.pos), ("bin.000004", 600));
    // Heartbeats and made-up events move nothing.
    assert!(!t.event(&at(HEARTBEAT_LOG_EVENT, 600, 30, true), &Event::Heartbeat));
    assert!(!t.event(&at(XID_EVENT, 0, 31, false), &Event::Xid));
}
