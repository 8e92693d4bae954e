use super::*;

const CAPS: u64 = CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SESSION_TRACK;

/// The 28-byte OK packet MariaDB 10.11 sent after an autocommit INSERT (mariadb-facts.md).
const REAL_OK: &[u8] = b"\x00\x01\x00\x02\x40\x00\x00\x00\x13\x00\x11\x09last_gtid\x060-1-12";

#[test]
fn real_ok_with_last_gtid() {
    assert_eq!(REAL_OK.len(), 28);
    let ok = OkPacket::parse(REAL_OK, CAPS).unwrap();
    assert_eq!(ok.affected_rows, 1);
    assert_eq!(ok.last_insert_id, 0);
    assert_eq!(
        ok.status,
        SERVER_STATUS_AUTOCOMMIT | SERVER_SESSION_STATE_CHANGED
    );
    assert!(ok.info.is_empty());
    assert_eq!(ok.session_state.len(), 19);
    let changes: Vec<_> = session_changes(&ok.session_state).collect();
    assert_eq!(
        changes,
        vec![Ok(SessionChange::SystemVariable {
            name: b"last_gtid",
            value: b"0-1-12"
        })]
    );
    assert_eq!(ok.last_gtid(), Some("0-1-12"));
    assert_eq!(ok.encode(CAPS), REAL_OK, "re-encodes byte for byte");
}

#[test]
fn schema_and_state_change() {
    // `USE sbtest`: schema then state change, as MariaDB sends them.
    let state = b"\x01\x07\x06sbtest\x02\x01\x31";
    let ok = OkPacket {
        status: SERVER_SESSION_STATE_CHANGED,
        session_state: state.to_vec(),
        ..Default::default()
    };
    let back = OkPacket::parse(&ok.encode(CAPS), CAPS).unwrap();
    assert_eq!(back, ok);
    let changes: Vec<_> = session_changes(&back.session_state)
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        changes,
        vec![
            SessionChange::Schema(b"sbtest"),
            SessionChange::StateChange(true)
        ]
    );
    assert_eq!(back.last_gtid(), None);
    // `SET autocommit=1`.
    let state = b"\x00\x0e\x0aautocommit\x02ON\x02\x01\x31";
    let changes: Vec<_> = session_changes(state).map(Result::unwrap).collect();
    assert_eq!(
        changes,
        vec![
            SessionChange::SystemVariable {
                name: b"autocommit",
                value: b"ON"
            },
            SessionChange::StateChange(true)
        ]
    );
}

#[test]
fn other_change_kinds_and_errors() {
    let state = b"\x03\x03\x00\x010\x05\x09\x08T_______\x09\x01z";
    let changes: Vec<_> = session_changes(state).map(Result::unwrap).collect();
    assert_eq!(
        changes,
        vec![
            SessionChange::Gtids(b"\x00\x010"),
            SessionChange::TransactionState(b"\x08T_______"),
            SessionChange::Unknown {
                kind: 9,
                data: b"z"
            }
        ]
    );
    // Truncated entry: one error, then the iterator ends.
    let changes: Vec<_> = session_changes(b"\x00\x11\x09last").collect();
    assert_eq!(changes, vec![Err(ProtocolError::Truncated)]);
}

#[test]
fn ok_ending_after_warnings() {
    let p = [0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];
    let ok = OkPacket::parse(&p, CAPS).unwrap();
    assert_eq!(ok.status, SERVER_STATUS_AUTOCOMMIT);
    assert!(ok.info.is_empty() && ok.session_state.is_empty());
    assert_eq!(ok.encode(CAPS), p);
    assert_eq!(strip_session_state(&p, CAPS), None);
}

#[test]
fn ok_without_session_track() {
    let caps = CLIENT_PROTOCOL_41;
    // What servers send: the message length-encoded (net_store_data), which drivers expect.
    let p = b"\x00\x03\xfc\x00\x01\x22\x00\x01\x00\x0fRows matched: 3";
    let ok = OkPacket::parse(p, caps).unwrap();
    assert_eq!(
        (ok.affected_rows, ok.last_insert_id, ok.warnings),
        (3, 256, 1)
    );
    assert_eq!(ok.info, b"Rows matched: 3");
    assert_eq!(ok.encode(caps), p);
    // The documented string<EOF> form is accepted too.
    let plain = b"\x00\x03\xfc\x00\x01\x22\x00\x01\x00Rows matched: 3";
    assert_eq!(
        OkPacket::parse(plain, caps).unwrap().info,
        b"Rows matched: 3"
    );
    let term = OkPacket { header: 0xfe, ..ok };
    assert!(is_ok_terminator(&term.encode(caps)));
}

#[test]
fn strip_session_state_rewrites() {
    let out = strip_session_state(REAL_OK, CAPS).unwrap();
    assert_eq!(out, [0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00]);
    // Info moves from lenenc to EOF-terminated.
    let ok = OkPacket {
        info: b"Rows matched: 1".to_vec(),
        status: 2,
        ..Default::default()
    };
    let out = strip_session_state(&ok.encode(CAPS), CAPS).unwrap();
    assert_eq!(OkPacket::parse(&out, CLIENT_PROTOCOL_41).unwrap(), ok);
    // An empty lenenc info byte is dropped.
    assert_eq!(
        strip_session_state(&[0, 0, 0, 2, 0, 0, 0, 0], CAPS).unwrap(),
        [0, 0, 0, 2, 0, 0, 0]
    );
    assert_eq!(strip_session_state(b"\xff\x01\x02", CAPS), None);
}

#[test]
fn err_packet() {
    let e = ErrPacket::new(ER_ACCESS_DENIED_ERROR, "Access denied for user 'x'@'y'");
    let enc = e.encode();
    assert_eq!(&enc[..9], b"\xff\x15\x04#28000");
    assert_eq!(ErrPacket::parse(&enc).unwrap(), e);
    assert_eq!(e.sql_state_str(), "28000");
    // Without SQLSTATE marker (pre-4.1 or early handshake errors).
    let e = ErrPacket::parse(b"\xff\x10\x04Too many connections").unwrap();
    assert_eq!(
        (e.code, &e.sql_state, e.message.as_str()),
        (1040, b"HY000", "Too many connections")
    );
    assert!(ErrPacket::parse(b"\xff\x10").is_err());
    assert!(ErrPacket::parse(b"\x00\x10\x04").is_err());
}

#[test]
fn eof_packet() {
    let eof = EofPacket {
        warnings: 3,
        status: SERVER_MORE_RESULTS_EXISTS,
    };
    let enc = eof.encode();
    assert!(is_eof_packet(&enc));
    assert_eq!(EofPacket::parse(&enc).unwrap(), eof);
    assert!(EofPacket::parse(&[0xfe, 1]).is_err());
    assert_eq!(EofPacket::parse(&[0xfe]).unwrap(), EofPacket::default());
    let row = [0xfe, 1, 2, 3, 4, 5, 6, 7, 8];
    assert!(!is_eof_packet(&row));
    assert!(is_ok_terminator(&row));
    assert!(!is_eof_packet(&[]) && !is_ok_terminator(&[]));
    assert!(is_ok_packet(&[0]) && is_err_packet(&[0xff]));
}
