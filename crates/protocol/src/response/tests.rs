use super::*;

const MORE: u16 = STATUS_MORE_RESULTS;
const AUTOCOMMIT: u16 = 0x0002;

fn ok(status: u16) -> Vec<u8> {
    let s = status.to_le_bytes();
    vec![0x00, 0x00, 0x00, s[0], s[1], 0, 0]
}
fn ok_fe(status: u16) -> Vec<u8> {
    let mut p = ok(status);
    p[0] = 0xFE;
    p
}
fn eof(status: u16) -> Vec<u8> {
    let s = status.to_le_bytes();
    vec![0xFE, 0, 0, s[0], s[1]]
}
fn err() -> Vec<u8> {
    let mut p = vec![0xFF, 0x28, 0x04, b'#'];
    p.extend_from_slice(b"42000oops");
    p
}
fn coldef() -> Vec<u8> {
    vec![0x03, b'd', b'e', b'f', 0, 0, 0, 1, b'a']
}
fn row(first: u8) -> Vec<u8> {
    vec![first, b'x', b'y']
}

/// Feeds packets, checking `bytes_needed` is honoured and that `is_row` (the forwarder's fast
/// path) agrees with `on_packet`; returns index of the packet that ended it.
fn run(
    expect: Expect,
    deprecate: bool,
    packets: &[Vec<u8>],
) -> Result<Option<usize>, ProtocolError> {
    let mut t = ResponseTracker::new(expect, deprecate);
    for (i, p) in packets.iter().enumerate() {
        let need = t.bytes_needed(p[0], p.len());
        let fast = t.is_row(p[0], p.len());
        let before = t.state;
        let ev = t.on_packet(&p[..need.max(1)], p.len())?;
        let plain_row = ev.kind == PacketKind::Row && !ev.done && ev.status.is_none();
        assert_eq!(fast, plain_row && t.state == before, "packet {i}: {p:?}");
        if ev.done {
            assert!(t.is_finished());
            return Ok(Some(i));
        }
    }
    Ok(None)
}

#[test]
fn simple_ok_and_err() {
    assert_eq!(
        run(Expect::Query, true, &[ok(AUTOCOMMIT)]).unwrap(),
        Some(0)
    );
    assert_eq!(run(Expect::Query, false, &[err()]).unwrap(), Some(0));
}

#[test]
fn result_set_classic_eof() {
    let p = vec![
        vec![2],
        coldef(),
        coldef(),
        eof(AUTOCOMMIT),
        row(1),
        row(0xFB),
        eof(AUTOCOMMIT),
    ];
    assert_eq!(run(Expect::Query, false, &p).unwrap(), Some(6));
}

#[test]
fn result_set_deprecate_eof() {
    let p = vec![vec![1], coldef(), row(1), row(2), ok_fe(AUTOCOMMIT)];
    assert_eq!(run(Expect::Query, true, &p).unwrap(), Some(4));
}

#[test]
fn row_starting_with_fe_is_not_a_terminator() {
    // A text row whose first column is longer than 2^24 starts with 0xFE but is a full packet.
    let mut big = vec![0xFE];
    big.resize(0xFF_FFFF, 0);
    let p = vec![vec![1], coldef(), big, ok_fe(0)];
    assert_eq!(run(Expect::Query, true, &p).unwrap(), Some(3));
    // Classic protocol: 0xFE with 9+ bytes is a row.
    let mut nine = vec![0xFE];
    nine.resize(12, 1);
    let p = vec![vec![1], coldef(), eof(0), nine, eof(0)];
    assert_eq!(run(Expect::Query, false, &p).unwrap(), Some(4));
}

#[test]
fn multi_results_continue_until_last() {
    let p = vec![
        vec![1],
        coldef(),
        row(1),
        ok_fe(MORE),
        ok(MORE),
        vec![1],
        coldef(),
        ok_fe(AUTOCOMMIT),
    ];
    assert_eq!(run(Expect::Query, true, &p).unwrap(), Some(7));
}

#[test]
fn error_mid_rows_ends_response() {
    let p = vec![vec![1], coldef(), row(1), err(), row(1)];
    assert_eq!(run(Expect::Query, true, &p).unwrap(), Some(3));
}

#[test]
fn local_infile_request_is_reported() {
    let mut t = ResponseTracker::new(Expect::Query, true);
    let req = [0xFB, b'/', b'f'];
    let ev = t.on_packet(&req, req.len()).unwrap();
    assert_eq!(ev.kind, PacketKind::LocalInfile);
    assert!(!ev.done);
    let ev = t.on_packet(&ok(0), 7).unwrap();
    assert!(ev.done);
}

#[test]
fn cursor_ends_after_metadata() {
    const CURSOR: u16 = STATUS_CURSOR_EXISTS;
    let p = vec![vec![1], coldef(), eof(CURSOR)];
    assert_eq!(run(Expect::Query, false, &p).unwrap(), Some(2));
    let p = vec![vec![1], coldef(), ok_fe(CURSOR)];
    assert_eq!(run(Expect::Query, true, &p).unwrap(), Some(2));
    // Fetch: binary rows then terminator.
    let p = vec![row(0), row(0), eof(0x80)];
    assert_eq!(run(Expect::Fetch, false, &p).unwrap(), Some(2));
}

#[test]
fn prepare_with_and_without_eof() {
    let prep = |cols: u16, params: u16| {
        let mut p = vec![0x00, 7, 0, 0, 0];
        p.extend_from_slice(&cols.to_le_bytes());
        p.extend_from_slice(&params.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        p
    };
    let classic = vec![prep(2, 1), coldef(), eof(0), coldef(), coldef(), eof(0)];
    assert_eq!(run(Expect::Prepare, false, &classic).unwrap(), Some(5));
    let modern = vec![prep(2, 1), coldef(), coldef(), coldef()];
    assert_eq!(run(Expect::Prepare, true, &modern).unwrap(), Some(3));
    assert_eq!(run(Expect::Prepare, false, &[prep(0, 0)]).unwrap(), Some(0));
    let params_only = vec![prep(0, 2), coldef(), coldef(), eof(0)];
    assert_eq!(run(Expect::Prepare, false, &params_only).unwrap(), Some(3));
    let mut t = ResponseTracker::new(Expect::Prepare, false);
    let p = prep(1, 0);
    let ev = t.on_packet(&p, p.len()).unwrap();
    assert_eq!(
        ev.kind,
        PacketKind::PrepareOk {
            statement_id: 7,
            columns: 1,
            params: 0
        }
    );
    // An EOF where a definition belongs is refused.
    assert!(t.on_packet(&eof(0), 5).is_err());
}

#[test]
fn field_list_and_single() {
    let p = vec![coldef(), coldef(), eof(0)];
    assert_eq!(run(Expect::FieldList, false, &p).unwrap(), Some(2));
    let p = vec![coldef(), ok_fe(0)];
    assert_eq!(run(Expect::FieldList, true, &p).unwrap(), Some(1));
    assert_eq!(
        run(Expect::Single, true, &[b"Uptime: 5".to_vec()]).unwrap(),
        Some(0)
    );
}

#[test]
fn status_is_read_from_ok_with_long_lenenc() {
    let mut t = ResponseTracker::new(Expect::Query, true);
    // affected rows = 300 (0xFC 2-byte), insert id = 70000 (0xFD 3-byte), status 0x4002.
    let p = [
        0x00, 0xFC, 0x2C, 0x01, 0xFD, 0x70, 0x11, 0x01, 0x02, 0x40, 0, 0,
    ];
    let ev = t.on_packet(&p, p.len()).unwrap();
    assert_eq!(ev.status, Some(0x4002));
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 5] = [&[], &[0x00], &[0xFE], &[0xFC, 0x01], &[0x00, 0xFE, 1]];
    for expect in [
        Expect::Query,
        Expect::Prepare,
        Expect::Fetch,
        Expect::FieldList,
        Expect::Single,
    ] {
        for deprecate in [false, true] {
            for input in inputs {
                let mut t = ResponseTracker::new(expect, deprecate);
                let _ = t.on_packet(input, input.len());
                let _ = t.on_packet(input, input.len());
            }
        }
    }
}
