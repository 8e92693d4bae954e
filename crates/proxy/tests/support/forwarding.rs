//! An in-process harness that drives the proxy's real per-statement path (`Engine::handle`:
//! classify, route, pool checkout, session-state sync, relay, record, release) with a client and
//! a fake MariaDB backend on loopback TCP, and counts the heap allocations the engine's thread
//! makes per statement.
//!
//! Shared by the `forwarding` benchmark and the `forwarding_allocs` test (`#[path]` include).
//! The fake backend logs the proxy in (mysql_native_password, any password) and answers with
//! canned bytes: a sysbench-like point select (1 row), a 100-row range select, OK for SET,
//! the handshake character-set variables, OK for COM_INIT_DB/COM_PING. The client side and the
//! backend are blocking threads that do not allocate per statement; only the engine's thread
//! (a current-thread tokio runtime, as the proxy's session task) is counted.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use lagless_protocol::consts::*;
use lagless_protocol::handshake::{generate_scramble, InitialHandshake};
use lagless_protocol::lenenc::put_lenenc_bytes;
use lagless_protocol::ok_err::{EofPacket, OkPacket};
use lagless_proxy::engine::{Engine, Flow};
use lagless_proxy::handshake::ClientIdentity;
use lagless_proxy::ProxyContext;

/// Counts allocations made on threads that opted in ([`count_this_thread`]).
pub struct Counting;

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    static TRACING: Cell<bool> = const { Cell::new(false) };
    /// Per thread: tests run in parallel, each with its own engine thread.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}
/// Backtraces still to print for allocations in the measured window (`FWD_TRACE=N`).
static TRACE_LEFT: AtomicU64 = AtomicU64::new(0);

fn note(size: usize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) && !TRACING.with(Cell::get) {
        ALLOCS.with(|c| c.set(c.get() + 1));
        BYTES.with(|c| c.set(c.get() + size as u64));
        if TRACE_LEFT.load(Ordering::Relaxed) > 0 {
            TRACING.with(|t| t.set(true));
            TRACE_LEFT.fetch_sub(1, Ordering::Relaxed);
            let bt = std::backtrace::Backtrace::force_capture();
            eprintln!("allocation of {size} bytes in the measured window:\n{bt}");
            TRACING.with(|t| t.set(false));
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n);
        unsafe { System.realloc(p, l, n) }
    }
}

pub fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// The statements the harness knows, and the fake backend's answer to each.
pub const POINT_SELECT: &str = "SELECT c FROM sbtest1 WHERE id=4242";
pub const RANGE_100: &str = "SELECT id, k, c, pad FROM sbtest1 WHERE id BETWEEN 1 AND 100";

const SERVER_CAPS: u64 = 0x81ff_f7fe;
/// What libmariadb (sysbench, the mariadb CLI) asks for: no DEPRECATE_EOF, no session tracking.
pub const CLIENT_CAPS: u64 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH;

fn frame(out: &mut Vec<u8>, seq: &mut u8, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&[len[0], len[1], len[2], *seq]);
    out.extend_from_slice(payload);
    *seq = seq.wrapping_add(1);
}

fn column(name: &str, type_: u8) -> Vec<u8> {
    let mut def = Vec::new();
    for s in ["def", "sbtest", "sbtest1", "sbtest1", name, name] {
        put_lenenc_bytes(&mut def, s.as_bytes());
    }
    // fixed-length fields: 0x0c, charset 45, length, type, flags, decimals, filler
    def.extend_from_slice(&[0x0c, 0x2d, 0x00, 0xf0, 0x01, 0x00, 0x00, type_]);
    def.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00]);
    def
}

/// The EOF after column definitions, unless the client asked for DEPRECATE_EOF.
fn end_of_columns(out: &mut Vec<u8>, seq: &mut u8, caps: u64) {
    if caps & CLIENT_DEPRECATE_EOF == 0 {
        frame(out, seq, &eof());
    }
}

/// The end of the rows: an OK with header 0xfe under DEPRECATE_EOF, else an EOF.
fn end_of_rows(out: &mut Vec<u8>, seq: &mut u8, caps: u64) {
    if caps & CLIENT_DEPRECATE_EOF != 0 {
        let ok = OkPacket {
            header: 0xfe,
            status: SERVER_STATUS_AUTOCOMMIT,
            ..Default::default()
        };
        frame(out, seq, &ok.encode(caps));
    } else {
        frame(out, seq, &eof());
    }
}

fn eof() -> Vec<u8> {
    EofPacket {
        warnings: 0,
        status: SERVER_STATUS_AUTOCOMMIT,
    }
    .encode()
}

/// A whole text result set, framed from sequence id 1, as a server with `caps` sends it.
pub fn result_set(caps: u64, cols: &[(&str, u8)], rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    frame(&mut out, &mut seq, &[cols.len() as u8]);
    for (name, t) in cols {
        frame(&mut out, &mut seq, &column(name, *t));
    }
    end_of_columns(&mut out, &mut seq, caps);
    for row in rows {
        let mut p = Vec::new();
        for v in row {
            put_lenenc_bytes(&mut p, v.as_bytes());
        }
        frame(&mut out, &mut seq, &p);
    }
    end_of_rows(&mut out, &mut seq, caps);
    out
}

fn sbtest_c(i: u64) -> String {
    // sysbench's c column: 120 characters of digit groups.
    let mut s = String::new();
    while s.len() < 119 {
        s.push_str(&format!("{:011}-", i * 7919 + s.len() as u64));
    }
    s.truncate(119);
    s
}

/// The point select as a prepared statement (one LONGLONG parameter).
pub const POINT_SELECT_PS: &str = "SELECT c FROM sbtest1 WHERE id=?";

/// COM_STMT_PREPARE's answer for [`POINT_SELECT_PS`]: statement 1, one column, one parameter.
fn prepare_response(caps: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    // OK, statement id, columns, params, filler, warnings
    frame(
        &mut out,
        &mut seq,
        &[0x00, 1, 0, 0, 0, 1, 0, 1, 0, 0x00, 0, 0],
    );
    frame(&mut out, &mut seq, &column("?", 8));
    end_of_columns(&mut out, &mut seq, caps);
    frame(&mut out, &mut seq, &column("c", 254));
    end_of_columns(&mut out, &mut seq, caps);
    out
}

/// COM_STMT_EXECUTE's answer: the point select's row in the binary protocol.
pub fn execute_response(caps: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    frame(&mut out, &mut seq, &[1]);
    frame(&mut out, &mut seq, &column("c", 254));
    end_of_columns(&mut out, &mut seq, caps);
    // header 0x00, NULL bitmap ((1 column + 7 + 2) / 8 = 1 byte), the value
    let mut row = vec![0x00, 0x00];
    put_lenenc_bytes(&mut row, sbtest_c(4242).as_bytes());
    frame(&mut out, &mut seq, &row);
    end_of_rows(&mut out, &mut seq, caps);
    out
}

pub fn point_select_response(caps: u64) -> Vec<u8> {
    result_set(caps, &[("c", 254)], &[vec![sbtest_c(4242)]])
}

pub fn range_response(caps: u64) -> Vec<u8> {
    let rows: Vec<Vec<String>> = (1..=100u64)
        .map(|i| {
            vec![
                i.to_string(),
                (i * 31 % 100_000).to_string(),
                sbtest_c(i),
                sbtest_c(i + 1_000_000)[..59].to_string(),
            ]
        })
        .collect();
    result_set(
        caps,
        &[("id", 3), ("k", 3), ("c", 254), ("pad", 254)],
        &rows,
    )
}

fn ok_packet(caps: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1;
    let ok = OkPacket {
        status: SERVER_STATUS_AUTOCOMMIT,
        ..Default::default()
    };
    frame(&mut out, &mut seq, &ok.encode(caps));
    out
}

/// Reads one packet (header and payload) into `buf`; false at EOF.
fn read_packet(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut h = [0u8; 4];
    if s.read_exact(&mut h).is_err() {
        return false;
    }
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    buf.resize(len, 0);
    s.read_exact(buf).is_ok()
}

/// Serves one proxy connection to the fake backend.
fn serve_backend(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let hs = InitialHandshake {
        server_version: "10.11.99-MariaDB-fake".into(),
        connection_id: 7,
        scramble: generate_scramble(),
        capabilities: SERVER_CAPS,
        charset: UTF8MB4_GENERAL_CI,
        status: SERVER_STATUS_AUTOCOMMIT,
        auth_plugin: lagless_protocol::auth::MYSQL_NATIVE_PASSWORD.into(),
    };
    let mut out = Vec::new();
    let mut seq = 0;
    frame(&mut out, &mut seq, &hs.encode());
    if s.write_all(&out).is_err() {
        return;
    }
    let mut buf = Vec::with_capacity(4096);
    if !read_packet(&mut s, &mut buf) {
        return;
    }
    let resp = lagless_protocol::handshake::HandshakeResponse::parse(&buf).expect("response");
    let caps = resp.capabilities & SERVER_CAPS;
    let mut login_ok = Vec::new();
    let mut seq = 2;
    frame(
        &mut login_ok,
        &mut seq,
        &OkPacket {
            status: SERVER_STATUS_AUTOCOMMIT,
            ..Default::default()
        }
        .encode(caps),
    );
    if s.write_all(&login_ok).is_err() {
        return;
    }
    let ok = ok_packet(caps);
    let prepared = prepare_response(caps);
    let executed = execute_response(caps);
    let point = point_select_response(caps);
    let range = range_response(caps);
    let charset_vars = result_set(
        caps,
        &[
            ("@@character_set_client", 253),
            ("@@character_set_connection", 253),
            ("@@character_set_results", 253),
            ("@@collation_connection", 253),
        ],
        &[vec![
            "utf8mb4".into(),
            "utf8mb4".into(),
            "utf8mb4".into(),
            "utf8mb4_general_ci".into(),
        ]],
    );
    loop {
        if !read_packet(&mut s, &mut buf) {
            return;
        }
        let reply: &[u8] = match buf.first() {
            Some(0x01) | None => return,
            // COM_STMT_PREPARE (only the point select is known), COM_STMT_EXECUTE
            Some(0x16) => &prepared,
            Some(0x17) => &executed,
            // COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA: no answer
            Some(0x19 | 0x18) => continue,
            Some(0x03) => {
                let sql = &buf[1..];
                if sql == POINT_SELECT.as_bytes() {
                    &point
                } else if sql == RANGE_100.as_bytes() {
                    &range
                } else if sql.starts_with(b"SELECT @@character_set_client") {
                    &charset_vars
                } else {
                    // SET and anything else the proxy sends for itself.
                    &ok
                }
            }
            _ => &ok,
        };
        if s.write_all(reply).is_err() {
            return;
        }
    }
}

/// Listens for proxy connections on a loopback port; each gets a thread.
fn start_backend() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    thread::Builder::new()
        .name("fake-backend".into())
        .spawn(move || {
            for s in l.incoming().flatten() {
                thread::spawn(move || serve_backend(s));
            }
        })
        .expect("spawn");
    addr
}

fn config(backend: &str) -> lagless_config::Config {
    let toml = format!(
        r#"
[listener]
address = "127.0.0.1:0"

[[users]]
name = "app"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
cluster = "main"

[[clusters]]
name = "main"
user = "app"
password = "lagless"
monitor_user = "lagless"
monitor_password = "lagless"

[[clusters.servers]]
name = "primary"
address = "{backend}"
role = "primary"

[[clusters.servers]]
name = "replica1"
address = "{backend}"
role = "replica"

[admin]
enabled = false

[monitor]
enabled = false

[consistency]
default = "eventual"
"#
    );
    lagless_config::from_toml_str(&toml).expect("config")
}

/// Allocation counts of the engine thread between two points.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub allocs: u64,
    pub bytes: u64,
}

/// The calling thread's counts so far.
fn counts() -> Counts {
    Counts {
        allocs: ALLOCS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
    }
}

/// One statement, as the client sends it, and the exact bytes it must get back.
pub struct Statement {
    packet: Vec<u8>,
    pub expected: Vec<u8>,
}

impl Statement {
    pub fn query(sql: &str, expected: Vec<u8>) -> Self {
        let mut payload = vec![0x03];
        payload.extend_from_slice(sql.as_bytes());
        let mut packet = Vec::new();
        frame(&mut packet, &mut 0, &payload);
        Statement { packet, expected }
    }

    /// A statement whose answer is only read (one result set or an OK/ERR), not compared.
    pub fn query_any(sql: &str) -> Self {
        Self::query(sql, Vec::new())
    }

    pub fn point_select() -> Self {
        Self::query(
            POINT_SELECT,
            point_select_response(CLIENT_CAPS & SERVER_CAPS),
        )
    }

    /// COM_STMT_EXECUTE of `POINT_SELECT_PS` prepared as client statement `id`, with its
    /// parameter types sent (as libmariadb does on every execution).
    pub fn execute_point_select(id: u32) -> Self {
        let mut payload = vec![0x17];
        payload.extend_from_slice(&id.to_le_bytes());
        // flags, iteration count, NULL bitmap, new_params_bound, LONGLONG, the value
        payload.extend_from_slice(&[0x00, 1, 0, 0, 0, 0x00, 1, 0x08, 0x00]);
        payload.extend_from_slice(&4242i64.to_le_bytes());
        let mut packet = Vec::new();
        frame(&mut packet, &mut 0, &payload);
        Statement {
            packet,
            expected: execute_response(CLIENT_CAPS & SERVER_CAPS),
        }
    }

    pub fn range_100() -> Self {
        Self::query(RANGE_100, range_response(CLIENT_CAPS & SERVER_CAPS))
    }
}

/// A proxy session (engine) on its own thread, a fake backend, and the client's socket.
pub struct Harness {
    client: TcpStream,
    reply: Vec<u8>,
    /// Tells the engine thread how many statements to run in its measured window.
    plan: mpsc::Sender<Window>,
    done: mpsc::Receiver<Counts>,
    engine: Option<thread::JoinHandle<()>>,
}

/// Statements before the window (warm-up) and in it.
#[derive(Clone, Copy)]
struct Window {
    before: u64,
    inside: u64,
}

impl Harness {
    pub fn start() -> Self {
        let backend = start_backend();
        let config = Arc::new(config(&backend));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (plan_tx, plan_rx) = mpsc::channel::<Window>();
        let (done_tx, done_rx) = mpsc::channel::<Counts>();
        let engine = thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let (stream, peer) = listener.accept().expect("accept");
                stream.set_nonblocking(true).expect("nonblocking");
                stream.set_nodelay(true).expect("nodelay");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let mut engine = rt.block_on(async move {
                    let ctx = Arc::new(
                        ProxyContext::new(config.clone(), "10.11.99-MariaDB-fake".into())
                            .expect("context"),
                    );
                    let stream = tokio::net::TcpStream::from_std(stream).expect("tokio stream");
                    let mut client = lagless_proxy::client::ClientConn::new(
                        stream.into(),
                        config.listener.max_allowed_packet,
                    );
                    client.capabilities = CLIENT_CAPS;
                    let identity = ClientIdentity {
                        user: "app".into(),
                        database: Some("sbtest".into()),
                        charset: UTF8MB4_GENERAL_CI,
                        connect_attrs: Vec::new(),
                        next_seq: 2,
                        scramble: [0; 20],
                    };
                    let mut engine = Engine::new(ctx, client, identity, peer.into(), 0);
                    assert!(engine.open().await.expect("open"), "session refused");
                    engine
                });
                count_this_thread();
                while let Ok(w) = plan_rx.recv() {
                    if !run(&rt, &mut engine, w.before).0 {
                        return;
                    }
                    let trace = std::env::var("FWD_TRACE").ok().and_then(|v| v.parse().ok());
                    TRACE_LEFT.store(trace.unwrap_or(0), Ordering::Relaxed);
                    let (open, counted) = measured_window(&rt, &mut engine, w.inside);
                    TRACE_LEFT.store(0, Ordering::Relaxed);
                    let _ = done_tx.send(counted);
                    if !open {
                        return;
                    }
                }
            })
            .expect("spawn");
        let client = TcpStream::connect(addr).expect("connect");
        client.set_nodelay(true).expect("nodelay");
        let mut h = Harness {
            client,
            reply: Vec::with_capacity(1 << 20),
            plan: plan_tx,
            done: done_rx,
            engine: Some(engine),
        };
        // The OK that ends the handshake (sent by `Engine::open`).
        let mut ok = Vec::new();
        assert!(read_packet(&mut h.client, &mut ok), "no OK from open()");
        assert_eq!(ok.first(), Some(&0x00), "open() answered {ok:?}");
        h
    }

    /// Prepares `POINT_SELECT_PS` through the proxy (not counted: run as a window of one
    /// statement) and returns the client's statement id.
    pub fn prepare_point_select(&mut self) -> u32 {
        let mut payload = vec![0x16];
        payload.extend_from_slice(POINT_SELECT_PS.as_bytes());
        let mut packet = Vec::new();
        frame(&mut packet, &mut 0, &payload);
        self.plan
            .send(Window {
                before: 0,
                inside: 1,
            })
            .expect("engine thread");
        self.client.write_all(&packet).expect("send");
        // OK with the id, 1 parameter definition, EOF, 1 column definition, EOF.
        assert!(
            read_packet(&mut self.client, &mut self.reply),
            "no prepare answer"
        );
        assert_eq!(
            self.reply.first(),
            Some(&0x00),
            "prepare failed: {:?}",
            self.reply
        );
        let id = u32::from_le_bytes([self.reply[1], self.reply[2], self.reply[3], self.reply[4]]);
        for _ in 0..4 {
            assert!(
                read_packet(&mut self.client, &mut self.reply),
                "prepare answer cut"
            );
        }
        self.done.recv().expect("engine thread");
        id
    }

    /// Runs `warmup` then `n` executions of `stmt`; returns the engine thread's allocations in
    /// the `n`.
    pub fn measure(&mut self, stmt: &Statement, warmup: u64, n: u64) -> Counts {
        self.plan
            .send(Window {
                before: warmup,
                inside: n,
            })
            .expect("engine thread");
        for _ in 0..warmup + n {
            self.roundtrip(stmt);
        }
        self.done.recv().expect("engine thread")
    }

    fn roundtrip(&mut self, stmt: &Statement) {
        self.client.write_all(&stmt.packet).expect("send");
        if stmt.expected.is_empty() {
            // Column count, definitions, EOF, rows, EOF (the client has no DEPRECATE_EOF).
            let mut eofs = 0;
            let mut first = true;
            while read_packet(&mut self.client, &mut self.reply) {
                let head = self.reply.first().copied();
                if first && matches!(head, Some(0x00 | 0xff)) {
                    return;
                }
                first = false;
                if head == Some(0xfe) && self.reply.len() < 9 {
                    eofs += 1;
                    if eofs == 2 {
                        return;
                    }
                }
            }
            panic!("the proxy closed the connection");
        }
        self.reply.resize(stmt.expected.len(), 0);
        self.client.read_exact(&mut self.reply).expect("reply");
        assert!(
            self.reply == stmt.expected,
            "the client got other bytes than the server sent"
        );
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.client.write_all(&[1, 0, 0, 0, 0x01]);
        let _ = self.client.shutdown(std::net::Shutdown::Both);
        let (tx, _) = mpsc::channel();
        self.plan = tx;
        if let Some(t) = self.engine.take() {
            let _ = t.join();
        }
    }
}

/// Serves `n` client commands, as the session loop does; false when the client went away, and
/// the allocations made meanwhile (counted inside the future: a debug build's `block_on` boxes
/// a large future first).
fn run(rt: &tokio::runtime::Runtime, engine: &mut Engine, n: u64) -> (bool, Counts) {
    rt.block_on(async {
        let start = counts();
        let mut open = true;
        for _ in 0..n {
            let packet = match engine.client.read_packet().await {
                Ok(Some(p)) => p,
                _ => {
                    open = false;
                    break;
                }
            };
            if engine.handle(packet).await.expect("handle") == Flow::Close {
                open = false;
                break;
            }
        }
        let end = counts();
        let counted = Counts {
            allocs: end.allocs - start.allocs,
            bytes: end.bytes - start.bytes,
        };
        (open, counted)
    })
}

/// The measured statements: a function of its own so that callgrind can collect only inside
/// it (`--toggle-collect='*measured_window*'`, see scripts/callgrind.sh).
#[inline(never)]
pub fn measured_window(
    rt: &tokio::runtime::Runtime,
    engine: &mut Engine,
    n: u64,
) -> (bool, Counts) {
    run(rt, engine, n)
}
