//! The packet codec on the forwarding path: framing, encoding, following a result set, and
//! reading a write's OK packet (with its `last_gtid` session state).
use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lagless_protocol::consts::{CLIENT_PROTOCOL_41, CLIENT_SESSION_TRACK, CLIENT_TRANSACTIONS};
use lagless_protocol::ok_err::OkPacket;
use lagless_protocol::packet::{decode_packet, encode_packet};
use lagless_protocol::response::{Expect, ResponseTracker};

/// The 28-byte OK packet MariaDB 10.11 sent after an autocommit INSERT.
const REAL_OK: &[u8] = b"\x00\x01\x00\x02\x40\x00\x00\x00\x13\x00\x11\x09last_gtid\x060-1-12";

/// A text result set as MariaDB sends it with CLIENT_DEPRECATE_EOF: column count, `cols`
/// definitions, `rows` rows of `cols` short values, the closing OK (0xFE).
fn result_set(cols: usize, rows: usize) -> BytesMut {
    let mut out = BytesMut::new();
    let mut seq = encode_packet(1, &[cols as u8], &mut out);
    for c in 0..cols {
        let mut def = Vec::new();
        for part in [
            "def",
            "sbtest",
            "sbtest1",
            "sbtest1",
            &format!("c{c}"),
            &format!("c{c}"),
        ] {
            def.push(part.len() as u8);
            def.extend_from_slice(part.as_bytes());
        }
        def.extend_from_slice(&[0x0c, 0x21, 0, 0xfc, 0x03, 0, 0, 0xfe, 0, 0, 0, 0, 0]);
        seq = encode_packet(seq, &def, &mut out);
    }
    for r in 0..rows {
        let mut row = Vec::new();
        for c in 0..cols {
            let v = format!("{r}-{c}-83868641912-28773972837-60736120486");
            row.push(v.len() as u8);
            row.extend_from_slice(v.as_bytes());
        }
        seq = encode_packet(seq, &row, &mut out);
    }
    encode_packet(seq, b"\xfe\x00\x00\x02\x00\x00\x00", &mut out);
    out
}

/// Frames `buf` into packets and follows the response: (rows, finished).
fn follow(buf: &mut BytesMut) -> (usize, bool) {
    let mut tracker = ResponseTracker::new(Expect::Query, true);
    let mut rows = 0;
    while let Some(p) = decode_packet(buf, 1 << 24).unwrap() {
        let first = p.payload[0];
        if tracker.is_row(first, p.payload.len()) {
            rows += 1;
            continue;
        }
        if tracker.on_packet(&p.payload, p.payload.len()).unwrap().done {
            return (rows, true);
        }
    }
    (rows, false)
}

fn bench(c: &mut Criterion) {
    let caps = CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SESSION_TRACK;
    let mut g = c.benchmark_group("codec");

    let wire = result_set(4, 100);
    assert_eq!(
        follow(&mut wire.clone()),
        (100, true),
        "the whole result set is read"
    );
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_and_track_100_rows", |b| {
        b.iter_batched_ref(
            || wire.clone(),
            |buf| black_box(follow(buf)),
            BatchSize::SmallInput,
        )
    });

    let payload = vec![0x61u8; 200];
    g.throughput(Throughput::Bytes(payload.len() as u64));
    let mut out = BytesMut::with_capacity(4096);
    g.bench_function("encode_200_bytes", |b| {
        b.iter(|| {
            out.clear();
            black_box(encode_packet(0, black_box(&payload), &mut out))
        })
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("ok_packet_last_gtid", |b| {
        b.iter(|| {
            let ok = OkPacket::parse(black_box(REAL_OK), caps).unwrap();
            black_box(ok.last_gtid().map(str::len))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
