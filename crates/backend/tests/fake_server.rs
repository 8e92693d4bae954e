//! Login and control-plane queries against a scripted in-process server built from the protocol
//! crate's server-side pieces.

use std::time::Duration;

use bytes::BytesMut;
use lagless_backend::io::{read_packet, write_packet};
use lagless_backend::{login, BackendError, LoginOptions, QueryResult};
use lagless_protocol::auth::*;
use lagless_protocol::consts::*;
use lagless_protocol::handshake::{generate_scramble, HandshakeResponse, InitialHandshake};
use lagless_protocol::lenenc::put_lenenc_bytes;
use lagless_protocol::ok_err::{EofPacket, ErrPacket, OkPacket};
use tokio::net::{TcpListener, TcpStream};

const MARIADB_CAPS: u64 = 0x81ff_f7fe | 0x1d << 32;
const MYSQL8_CAPS: u64 = 0xdfff_ffff;

#[derive(Clone, Copy, PartialEq)]
enum Script {
    /// Server default plugin native; account native.
    Native,
    /// Default caching_sha2; the cache misses so the client must do RSA full auth.
    Sha2Full,
    /// Default caching_sha2; fast auth succeeds.
    Sha2Fast,
    /// Default caching_sha2, account uses native: auth switch with a fresh scramble.
    SwitchToNative,
    /// Refuses the greeting with ERR 1040.
    TooManyConnections,
    /// Accepts and says nothing.
    Silent,
}

struct Conn {
    s: TcpStream,
    buf: BytesMut,
    seq: u8,
}

impl Conn {
    async fn send(&mut self, payload: &[u8]) {
        self.seq = write_packet(&mut self.s, self.seq, payload).await.unwrap();
    }
    async fn recv(&mut self) -> Vec<u8> {
        let p = read_packet(&mut self.s, &mut self.buf, 1 << 20)
            .await
            .unwrap();
        self.seq = p.last_seq.wrapping_add(1);
        p.payload.to_vec()
    }
}

async fn serve(listener: TcpListener, script: Script, password: &'static str) {
    let (s, _) = listener.accept().await.unwrap();
    let mut c = Conn {
        s,
        buf: BytesMut::new(),
        seq: 0,
    };
    match script {
        Script::Silent => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return;
        }
        Script::TooManyConnections => {
            c.send(&ErrPacket::new(ER_CON_COUNT_ERROR, "Too many connections").encode())
                .await;
            return;
        }
        _ => {}
    }
    let sha2_default = !matches!(script, Script::Native);
    let caps = if sha2_default {
        MYSQL8_CAPS
    } else {
        MARIADB_CAPS
    };
    let scramble = generate_scramble();
    let hs = InitialHandshake {
        server_version: "8.0.36-fake".into(),
        connection_id: 77,
        scramble,
        capabilities: caps,
        charset: UTF8MB4_GENERAL_CI,
        status: SERVER_STATUS_AUTOCOMMIT,
        auth_plugin: if sha2_default {
            CACHING_SHA2_PASSWORD
        } else {
            MYSQL_NATIVE_PASSWORD
        }
        .into(),
    };
    c.send(&hs.encode()).await;
    let resp = HandshakeResponse::parse(&c.recv().await).unwrap();
    assert_eq!(resp.username, "app");
    assert_eq!(resp.database.as_deref(), Some("sbtest"));
    assert_eq!(
        resp.connect_attrs,
        vec![("program_name".to_string(), "lagless".to_string())]
    );
    assert_eq!(resp.capabilities & CLIENT_SSL, 0);
    let client_caps = resp.capabilities;
    let pw = password.as_bytes();
    let accepted = match script {
        Script::Native => {
            assert_eq!(resp.auth_plugin.as_deref(), Some(MYSQL_NATIVE_PASSWORD));
            verify_native(&native_password_hash(pw), &scramble, &resp.auth_response)
        }
        Script::Sha2Fast => {
            let ok =
                verify_caching_sha2_fast(&caching_sha2_stored(pw), &scramble, &resp.auth_response);
            c.send(
                &AuthMoreData {
                    data: vec![CACHING_SHA2_FAST_AUTH_SUCCESS],
                }
                .encode(),
            )
            .await;
            ok
        }
        Script::Sha2Full => {
            assert_eq!(resp.auth_plugin.as_deref(), Some(CACHING_SHA2_PASSWORD));
            c.send(
                &AuthMoreData {
                    data: vec![CACHING_SHA2_PERFORM_FULL_AUTH],
                }
                .encode(),
            )
            .await;
            assert_eq!(c.recv().await, [CACHING_SHA2_REQUEST_PUBLIC_KEY]);
            let key = RsaKeyPair::generate().unwrap();
            c.send(
                &AuthMoreData {
                    data: key.public_key_pem().into_bytes(),
                }
                .encode(),
            )
            .await;
            let cleartext = key.decrypt_password(&c.recv().await, &scramble).unwrap();
            verify_cleartext_caching_sha2(&caching_sha2_stored(pw), &cleartext)
        }
        Script::SwitchToNative => {
            let fresh = generate_scramble();
            let mut data = fresh.to_vec();
            data.push(0);
            c.send(
                &AuthSwitchRequest {
                    plugin: MYSQL_NATIVE_PASSWORD.into(),
                    data,
                }
                .encode(),
            )
            .await;
            let reply = c.recv().await;
            verify_native(&native_password_hash(pw), &fresh, &reply)
        }
        Script::TooManyConnections | Script::Silent => unreachable!(),
    };
    if !accepted {
        c.send(&ErrPacket::new(ER_ACCESS_DENIED_ERROR, "Access denied for user 'app'").encode())
            .await;
        return;
    }
    c.send(
        &OkPacket {
            status: SERVER_STATUS_AUTOCOMMIT,
            ..Default::default()
        }
        .encode(client_caps),
    )
    .await;

    // Control plane: answer queries until the client goes away.
    loop {
        c.seq = 0;
        let Ok(p) = read_packet(&mut c.s, &mut c.buf, 1 << 20).await else {
            return;
        };
        c.seq = 1;
        match p.payload.first() {
            Some(0x0e) => {
                c.send(
                    &OkPacket {
                        status: 2,
                        ..Default::default()
                    }
                    .encode(client_caps),
                )
                .await
            }
            Some(0x03) if &p.payload[1..] == b"SELECT 1, NULL" => {
                if client_caps & MARIADB_CLIENT_PROGRESS != 0 {
                    c.send(b"\xff\xff\xff\x01\x01\x10\x00\x00\x04busy").await;
                }
                send_result(
                    &mut c,
                    client_caps,
                    &["1", "NULL"],
                    &[vec![Some("1"), None]],
                )
                .await
            }
            Some(0x03) if p.payload.starts_with(b"\x03SET") => {
                let ok = OkPacket {
                    status: 2 | SERVER_SESSION_STATE_CHANGED,
                    session_state: b"\x00\x11\x09last_gtid\x060-1-12".to_vec(),
                    ..Default::default()
                };
                c.send(&ok.encode(client_caps)).await
            }
            _ => {
                c.send(&ErrPacket::new(ER_UNKNOWN_COM_ERROR, "nope").encode())
                    .await
            }
        }
    }
}

async fn send_result(c: &mut Conn, caps: u64, cols: &[&str], rows: &[Vec<Option<&str>>]) {
    let mut count = vec![cols.len() as u8];
    if caps & MARIADB_CLIENT_CACHE_METADATA != 0 {
        count.push(1);
    }
    c.send(&count).await;
    for name in cols {
        let mut def = Vec::new();
        for s in ["def", "", "", "", name, ""] {
            put_lenenc_bytes(&mut def, s.as_bytes());
        }
        def.extend_from_slice(b"\x0c\x2d\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00");
        c.send(&def).await;
    }
    let deprecate_eof = caps & CLIENT_DEPRECATE_EOF != 0;
    if !deprecate_eof {
        c.send(
            &EofPacket {
                warnings: 0,
                status: 2,
            }
            .encode(),
        )
        .await;
    }
    for row in rows {
        let mut p = Vec::new();
        for v in row {
            match v {
                Some(v) => put_lenenc_bytes(&mut p, v.as_bytes()),
                None => p.push(0xfb),
            }
        }
        c.send(&p).await;
    }
    if deprecate_eof {
        c.send(
            &OkPacket {
                header: 0xfe,
                status: 2,
                ..Default::default()
            }
            .encode(caps),
        )
        .await;
    } else {
        c.send(
            &EofPacket {
                warnings: 0,
                status: 2,
            }
            .encode(),
        )
        .await;
    }
}

async fn start(script: Script, server_password: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(listener, script, server_password));
    addr
}

fn opts(addr: String, caps: u64) -> LoginOptions {
    LoginOptions {
        addr,
        user: "app".into(),
        password: "s3cret".into(),
        database: Some("sbtest".into()),
        capabilities: caps,
        charset: UTF8MB4_GENERAL_CI,
        connect_attrs: vec![("program_name".into(), "lagless".into())],
        connect_timeout: Duration::from_secs(5),
        max_packet: 1 << 24,
    }
}

const WANT: u64 = CLIENT_SESSION_TRACK
    | CLIENT_DEPRECATE_EOF
    | MARIADB_CLIENT_PROGRESS
    | CLIENT_MULTI_RESULTS
    | CLIENT_LONG_FLAG
    | MARIADB_CLIENT_CACHE_METADATA;

#[tokio::test]
async fn every_auth_path_logs_in_and_queries() {
    for script in [
        Script::Native,
        Script::Sha2Full,
        Script::Sha2Fast,
        Script::SwitchToNative,
    ] {
        for caps in [WANT, WANT & !CLIENT_DEPRECATE_EOF] {
            let mut login = login(&opts(start(script, "s3cret").await, caps))
                .await
                .unwrap();
            assert_eq!(login.connection_id, 77);
            assert_eq!(login.server_version, "8.0.36-fake");
            assert_eq!(login.status, SERVER_STATUS_AUTOCOMMIT);
            assert!(login.read_buf.is_empty());
            assert_ne!(login.capabilities & CLIENT_SESSION_TRACK, 0);
            let mariadb = script == Script::Native;
            assert_eq!(
                login.capabilities & MARIADB_CLIENT_CACHE_METADATA != 0,
                mariadb
            );

            login.ping().await.unwrap();
            let rows = login.query_rows("SELECT 1, NULL").await.unwrap();
            assert_eq!(rows.columns, ["1", "NULL"]);
            assert_eq!(rows.rows, vec![vec![Some("1".to_string()), None]]);
            let ok = login.query_ok("SET x=1").await.unwrap();
            assert_eq!(ok.last_gtid(), Some("0-1-12"));
            assert!(matches!(
                login.query("bogus").await,
                Err(BackendError::Server { code: 1047, .. })
            ));
            // Still in sync after a server error.
            assert!(matches!(
                login.query("SELECT 1, NULL").await,
                Ok(QueryResult::Rows(_))
            ));
        }
    }
}

#[tokio::test]
async fn wrong_password_is_a_server_error() {
    for script in [Script::Native, Script::Sha2Full, Script::SwitchToNative] {
        let err = login(&opts(start(script, "other").await, WANT))
            .await
            .unwrap_err();
        match err {
            BackendError::Server {
                code, sql_state, ..
            } => {
                assert_eq!((code, sql_state.as_str()), (1045, "28000"))
            }
            e => panic!("unexpected {e}"),
        }
    }
}

#[tokio::test]
async fn greeting_error_and_timeouts() {
    let err = login(&opts(start(Script::TooManyConnections, "").await, WANT))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackendError::Server { code: 1040, .. }),
        "{err}"
    );

    let mut o = opts(start(Script::Silent, "").await, WANT);
    o.connect_timeout = Duration::from_millis(200);
    let err = login(&o).await.unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::Timeout {
                stage: "authentication",
                ..
            }
        ),
        "{err}"
    );

    // Nothing listens there (port of a listener we just closed).
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = login(&opts(addr.to_string(), WANT)).await.unwrap_err();
    assert!(matches!(err, BackendError::Io { .. }), "{err}");
}
