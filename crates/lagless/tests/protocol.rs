//! Protocol-level behaviour through the real binary with a raw client: cursors, long data,
//! COM_SET_OPTION, COM_FIELD_LIST, unknown commands, and bad input (garbage, truncated and
//! oversized packets, silent clients, clients that leave mid-result). The proxy here runs with
//! max_allowed_packet = 1 MiB and a 1 s handshake timeout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lagless_e2e::raw::{is_end, ok_status, raw_login, recv, recv_until, send};
use lagless_e2e::{rt, shared_env_with, Env, EnvOptions};
use lagless_protocol::consts::*;

fn env() -> &'static Env {
    shared_env_with(env!("CARGO_BIN_EXE_lagless"), || EnvOptions {
        listener_extra: "max_allowed_packet = 1048576".into(),
        timeouts_extra: "handshake_ms = 1000".into(),
        ..EnvOptions::default()
    })
}

fn com(cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![cmd];
    p.extend_from_slice(body);
    p
}

/// Executes a prepared statement with no parameters and the given cursor flags.
fn execute(stmt: u32, flags: u8) -> Vec<u8> {
    let mut p = vec![Command::StmtExecute as u8];
    p.extend_from_slice(&stmt.to_le_bytes());
    p.push(flags);
    p.extend_from_slice(&1u32.to_le_bytes());
    p
}

fn fetch(stmt: u32, rows: u32) -> Vec<u8> {
    let mut p = vec![Command::StmtFetch as u8];
    p.extend_from_slice(&stmt.to_le_bytes());
    p.extend_from_slice(&rows.to_le_bytes());
    p
}

#[test]
fn cursor_fetch_reset_and_close_with_and_without_deprecate_eof() {
    for deprecate in [true, false] {
        rt().block_on(async {
            let caps = if deprecate { CLIENT_DEPRECATE_EOF } else { 0 };
            let mut c = raw_login(env().port(), "app", "lagless", caps)
                .await
                .unwrap();
            send(
                &mut c,
                &com(Command::StmtPrepare as u8, b"SELECT seq FROM seq_1_to_10"),
            )
            .await
            .unwrap();
            let prep = recv(&mut c).await.unwrap();
            assert_eq!(prep.payload[0], 0x00, "prepare OK");
            let stmt = u32::from_le_bytes(prep.payload[1..5].try_into().unwrap());
            // One column definition, plus an EOF in the classic protocol.
            recv(&mut c).await.unwrap();
            if !deprecate {
                assert_eq!(recv(&mut c).await.unwrap().payload[0], 0xFE);
            }
            send(&mut c, &execute(stmt, 0x01)).await.unwrap(); // CURSOR_TYPE_READ_ONLY
            let meta = recv_until(&mut c, is_end).await.unwrap();
            let status = ok_status(&meta.last().unwrap().payload, deprecate);
            assert!(
                status & SERVER_STATUS_CURSOR_EXISTS != 0,
                "cursor opened: {status:#x}"
            );
            let mut seen = 0;
            loop {
                send(&mut c, &fetch(stmt, 4)).await.unwrap();
                let rows = recv_until(&mut c, is_end).await.unwrap();
                seen += rows.len() - 1;
                let status = ok_status(&rows.last().unwrap().payload, deprecate);
                if status & SERVER_STATUS_LAST_ROW_SENT != 0 {
                    break;
                }
                assert!(seen < 10, "fetched every row without LAST_ROW_SENT");
            }
            assert_eq!(seen, 10);
            let mut reset = vec![Command::StmtReset as u8];
            reset.extend_from_slice(&stmt.to_le_bytes());
            send(&mut c, &reset).await.unwrap();
            assert_eq!(recv(&mut c).await.unwrap().payload[0], 0x00);
            let mut close = vec![Command::StmtClose as u8];
            close.extend_from_slice(&stmt.to_le_bytes());
            send(&mut c, &close).await.unwrap(); // no response
            send(&mut c, &[Command::Ping as u8]).await.unwrap();
            assert_eq!(
                recv(&mut c).await.unwrap().payload[0],
                0x00,
                "ping after close"
            );
        });
    }
}

#[test]
fn send_long_data_then_execute() {
    rt().block_on(async {
        let mut c = raw_login(env().port(), "app", "lagless", CLIENT_DEPRECATE_EOF)
            .await
            .unwrap();
        send(
            &mut c,
            &com(Command::StmtPrepare as u8, b"SELECT LENGTH(?)"),
        )
        .await
        .unwrap();
        let prep = recv(&mut c).await.unwrap();
        let stmt = u32::from_le_bytes(prep.payload[1..5].try_into().unwrap());
        recv_until(&mut c, |_| true).await.unwrap(); // parameter definition
        recv_until(&mut c, |_| true).await.unwrap(); // column definition
                                                     // Three chunks of 600 KiB: together over max_allowed_packet, each under it.
        for _ in 0..3 {
            let mut p = vec![Command::StmtSendLongData as u8];
            p.extend_from_slice(&stmt.to_le_bytes());
            p.extend_from_slice(&0u16.to_le_bytes());
            p.extend(std::iter::repeat_n(b'z', 600 * 1024));
            send(&mut c, &p).await.unwrap();
        }
        let mut p = execute(stmt, 0);
        p.push(0); // NULL bitmap
        p.push(1); // new params bound
        p.extend_from_slice(&[0xFE, 0x00]); // MYSQL_TYPE_STRING
        send(&mut c, &p).await.unwrap();
        let rows = recv_until(&mut c, is_end).await.unwrap();
        // column count, column def, row, terminator; binary row: 0x00, null bitmap, LONG.
        let row = &rows[2].payload;
        assert_eq!(row.len(), 6, "one 4-byte integer: {row:?}");
        let len = i32::from_le_bytes(row[2..6].try_into().unwrap());
        assert_eq!(len, 3 * 600 * 1024);
    });
}

#[test]
fn set_option_toggles_multi_statements() {
    rt().block_on(async {
        let caps = CLIENT_DEPRECATE_EOF | CLIENT_MULTI_STATEMENTS;
        let mut c = raw_login(env().port(), "app", "lagless", caps)
            .await
            .unwrap();
        send(&mut c, &com(Command::SetOption as u8, &1u16.to_le_bytes()))
            .await
            .unwrap(); // OFF
        let r = recv(&mut c).await.unwrap();
        assert_ne!(r.payload[0], 0xFF, "SET_OPTION off accepted");
        send(&mut c, &com(Command::Query as u8, b"SELECT 1; SELECT 2"))
            .await
            .unwrap();
        let r = recv_until(&mut c, is_end).await.unwrap();
        assert_eq!(
            r.last().unwrap().payload[0],
            0xFF,
            "multi-statement refused when off"
        );
        send(&mut c, &com(Command::SetOption as u8, &0u16.to_le_bytes()))
            .await
            .unwrap(); // ON
        assert_ne!(recv(&mut c).await.unwrap().payload[0], 0xFF);
        send(&mut c, &com(Command::Query as u8, b"SELECT 1; SELECT 2"))
            .await
            .unwrap();
        let first = recv_until(&mut c, is_end).await.unwrap();
        assert!(ok_status(&first.last().unwrap().payload, true) & SERVER_MORE_RESULTS_EXISTS != 0);
        let second = recv_until(&mut c, is_end).await.unwrap();
        assert_eq!(second.len(), 4);
    });
}

#[test]
fn field_list_and_unknown_command() {
    rt().block_on(async {
        let mut c = raw_login(env().port(), "app", "lagless", 0).await.unwrap();
        send(
            &mut c,
            &com(
                Command::Query as u8,
                b"CREATE TABLE IF NOT EXISTS fl (a INT, b TEXT)",
            ),
        )
        .await
        .unwrap();
        assert_eq!(recv(&mut c).await.unwrap().payload[0], 0x00);
        send(&mut c, &com(Command::FieldList as u8, b"fl\0"))
            .await
            .unwrap();
        let defs = recv_until(&mut c, is_end).await.unwrap();
        assert_eq!(defs.len(), 3, "two column definitions and EOF");
        send(&mut c, &[0x99, 1, 2, 3]).await.unwrap();
        let err = recv(&mut c).await.unwrap();
        assert_eq!(err.payload[0], 0xFF);
        assert_eq!(u16::from_le_bytes([err.payload[1], err.payload[2]]), 1047);
        send(&mut c, &[Command::Ping as u8]).await.unwrap();
        assert_eq!(
            recv(&mut c).await.unwrap().payload[0],
            0x00,
            "usable after an unknown command"
        );
    });
}

/// Reads until the proxy closes the socket or 5 s pass; returns what was read.
fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// Connects and reads the greeting packet.
fn greeted() -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", env().port())).unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut greeting = vec![0; len];
    s.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting[0], 10, "protocol 10 greeting");
    s
}

fn assert_proxy_serves() {
    let out = env().cli("app", "lagless", "SELECT 'alive'").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alive\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn garbage_handshake_gets_an_error_and_the_proxy_keeps_serving() {
    let mut s = greeted();
    let mut junk = vec![40, 0, 0, 1];
    junk.extend((0..40u8).map(|i| i.wrapping_mul(37)));
    s.write_all(&junk).unwrap();
    let (reply, closed) = read_to_close(&mut s);
    assert!(closed, "connection closed");
    assert_eq!(
        reply.get(4),
        Some(&0xFF),
        "an ERR packet before closing: {reply:?}"
    );
    assert_proxy_serves();
}

#[test]
fn truncated_packet_then_disconnect_is_harmless() {
    let mut s = greeted();
    s.write_all(&[100, 0, 0, 1, 1, 2, 3]).unwrap(); // announces 100 bytes, sends 3
    drop(s);
    assert_proxy_serves();
}

#[test]
fn silent_client_is_closed_after_the_handshake_timeout() {
    let mut s = greeted();
    let start = Instant::now();
    let (reply, closed) = read_to_close(&mut s);
    assert!(closed, "closed by the proxy");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        start.elapsed()
    );
    assert_eq!(reply.get(4), Some(&0xFF), "told why: {reply:?}");
}

#[test]
fn packet_over_max_allowed_packet_gets_1153_and_a_close() {
    rt().block_on(async {
        let mut c = raw_login(env().port(), "app", "lagless", 0).await.unwrap();
        let mut q = b"SELECT '".to_vec();
        q.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
        q.extend_from_slice(b"'");
        send(&mut c, &com(Command::Query as u8, &q)).await.unwrap();
        let err = recv(&mut c).await.unwrap();
        assert_eq!(err.payload[0], 0xFF);
        assert_eq!(u16::from_le_bytes([err.payload[1], err.payload[2]]), 1153);
        assert!(
            recv(&mut c).await.is_err(),
            "connection closed after the error"
        );
    });
    assert_proxy_serves();
}

#[test]
fn client_leaving_mid_result_frees_its_backend_connection() {
    let primary = env().sandbox.primary();
    let count = || -> usize {
        primary
            .scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'lagless' AND INFO LIKE '%seq_1_to_200000%'")
            .unwrap()
            .parse()
            .unwrap()
    };
    rt().block_on(async {
        let mut c = raw_login(env().port(), "app", "lagless", CLIENT_DEPRECATE_EOF)
            .await
            .unwrap();
        send(
            &mut c,
            &com(
                Command::Query as u8,
                b"SELECT REPEAT('x', 1000) FROM seq_1_to_200000",
            ),
        )
        .await
        .unwrap();
        recv(&mut c).await.unwrap(); // column count: the result is streaming
        drop(c);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() > 0 {
        assert!(
            Instant::now() < deadline,
            "the backend query still runs after its client left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_proxy_serves();
}
