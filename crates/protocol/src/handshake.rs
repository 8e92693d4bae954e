//! Connection phase: the server greeting (protocol version 10), the client's handshake response
//! and the SSL request.

use bytes::BufMut;
use rand::Rng;

use crate::consts::*;
use crate::lenenc::{put_lenenc_bytes, put_lenenc_int, put_nul_bytes, Reader};
use crate::ProtocolError;

/// Length of the scramble (nonce) sent in the greeting.
pub const SCRAMBLE_LEN: usize = 20;

/// The server's first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialHandshake {
    pub server_version: String,
    pub connection_id: u32,
    pub scramble: [u8; SCRAMBLE_LEN],
    /// Includes MariaDB extended capabilities in the high 32 bits when CLIENT_MYSQL is clear.
    pub capabilities: u64,
    pub charset: u8,
    pub status: u16,
    pub auth_plugin: String,
}

impl InitialHandshake {
    pub fn encode(&self) -> Vec<u8> {
        let caps = self.capabilities;
        let mut out = Vec::with_capacity(80 + self.server_version.len());
        out.put_u8(10);
        put_nul_bytes(&mut out, self.server_version.as_bytes());
        out.put_u32_le(self.connection_id);
        out.put_slice(&self.scramble[..8]);
        out.put_u8(0);
        out.put_u16_le(caps as u16);
        out.put_u8(self.charset);
        out.put_u16_le(self.status);
        out.put_u16_le((caps >> 16) as u16);
        let auth_len = if caps & CLIENT_PLUGIN_AUTH != 0 {
            SCRAMBLE_LEN as u8 + 1
        } else {
            0
        };
        out.put_u8(auth_len);
        out.put_bytes(0, 6);
        // MariaDB puts its extended capabilities in the last 4 reserved bytes.
        let ext = if caps & CLIENT_MYSQL == 0 {
            (caps >> 32) as u32
        } else {
            0
        };
        out.put_u32_le(ext);
        if caps & CLIENT_SECURE_CONNECTION != 0 {
            // Part 2 carries its trailing NUL: clients count it (13 bytes).
            put_nul_bytes(&mut out, &self.scramble[8..]);
        }
        if caps & CLIENT_PLUGIN_AUTH != 0 {
            put_nul_bytes(&mut out, self.auth_plugin.as_bytes());
        }
        out
    }

    /// Parses a greeting (client side). An ERR packet here (0xFF) is not a greeting: check first.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8()? != 10 {
            return Err(ProtocolError::Malformed(
                "unsupported handshake protocol version",
            ));
        }
        let server_version = String::from_utf8_lossy(r.nul_bytes()?).into_owned();
        let connection_id = r.u32()?;
        let mut scramble = [0u8; SCRAMBLE_LEN];
        scramble[..8].copy_from_slice(r.bytes(8)?);
        r.skip(1)?;
        let mut caps = u64::from(r.u16()?);
        let mut hs = Self {
            server_version,
            connection_id,
            scramble,
            capabilities: caps,
            charset: 0,
            status: 0,
            auth_plugin: String::new(),
        };
        if r.is_empty() {
            return Ok(hs);
        }
        hs.charset = r.u8()?;
        hs.status = r.u16()?;
        caps |= u64::from(r.u16()?) << 16;
        let auth_len = usize::from(r.u8()?);
        r.skip(6)?;
        let ext = r.u32()?;
        if caps & CLIENT_MYSQL == 0 {
            caps |= u64::from(ext) << 32;
        }
        hs.capabilities = caps;
        if caps & CLIENT_SECURE_CONNECTION != 0 {
            let part2_len = auth_len.saturating_sub(8).max(13);
            let part2 = r.bytes(part2_len.min(r.remaining()))?;
            let part2 = part2.get(..12).ok_or(ProtocolError::Truncated)?;
            hs.scramble[8..].copy_from_slice(part2);
        }
        if caps & CLIENT_PLUGIN_AUTH != 0 {
            hs.auth_plugin = String::from_utf8_lossy(r.nul_bytes_lenient()).into_owned();
        }
        Ok(hs)
    }
}

/// The client's reply to the greeting (protocol 4.1 only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    /// Includes MariaDB extended capabilities in the high 32 bits when CLIENT_MYSQL is clear.
    pub capabilities: u64,
    pub max_packet: u32,
    pub charset: u8,
    pub username: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    pub connect_attrs: Vec<(String, String)>,
}

impl HandshakeResponse {
    /// Parses a handshake response (server side). Fails on pre-4.1 clients and on SSL requests
    /// (check [`is_ssl_request`] first).
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let mut caps = u64::from(r.u32()?);
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return Err(ProtocolError::Malformed("pre-4.1 handshake response"));
        }
        let max_packet = r.u32()?;
        let charset = r.u8()?;
        r.skip(19)?;
        let ext = r.u32()?;
        if caps & CLIENT_MYSQL == 0 {
            caps |= u64::from(ext) << 32;
        }
        let username = lossy(r.nul_bytes()?);
        let auth_response = if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes()?
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8()?);
            r.bytes(n)?
        } else {
            r.nul_bytes_lenient()
        }
        .to_vec();
        let mut database = None;
        if caps & CLIENT_CONNECT_WITH_DB != 0 && !r.is_empty() {
            let db = r.nul_bytes_lenient();
            if !db.is_empty() {
                database = Some(lossy(db));
            }
        }
        let mut auth_plugin = None;
        if caps & CLIENT_PLUGIN_AUTH != 0 && !r.is_empty() {
            auth_plugin = Some(lossy(r.nul_bytes_lenient()));
        }
        let mut connect_attrs = Vec::new();
        if caps & CLIENT_CONNECT_ATTRS != 0 && !r.is_empty() {
            let mut attrs = Reader::new(r.lenenc_bytes()?);
            while !attrs.is_empty() {
                let k = lossy(attrs.lenenc_bytes()?);
                let v = lossy(attrs.lenenc_bytes()?);
                connect_attrs.push((k, v));
            }
        }
        Ok(Self {
            capabilities: caps,
            max_packet,
            charset,
            username,
            auth_response,
            database,
            auth_plugin,
            connect_attrs,
        })
    }

    /// Encodes the response (client side). Optional fields are written when their capability is
    /// set in `capabilities` (empty if absent); the caller sets the flags.
    pub fn encode(&self) -> Vec<u8> {
        let caps = self.capabilities;
        let mut out = Vec::with_capacity(64 + self.username.len() + self.auth_response.len());
        out.put_u32_le(caps as u32);
        out.put_u32_le(self.max_packet);
        out.put_u8(self.charset);
        out.put_bytes(0, 19);
        let ext = if caps & CLIENT_MYSQL == 0 {
            (caps >> 32) as u32
        } else {
            0
        };
        out.put_u32_le(ext);
        put_nul_bytes(&mut out, self.username.as_bytes());
        if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else if caps & CLIENT_SECURE_CONNECTION != 0 {
            // One length byte: longer responses need the lenenc capability.
            let n = self.auth_response.len().min(255);
            out.put_u8(n as u8);
            out.put_slice(&self.auth_response[..n]);
        } else {
            put_nul_bytes(&mut out, &self.auth_response);
        }
        if caps & CLIENT_CONNECT_WITH_DB != 0 {
            put_nul_bytes(&mut out, self.database.as_deref().unwrap_or("").as_bytes());
        }
        if caps & CLIENT_PLUGIN_AUTH != 0 {
            put_nul_bytes(
                &mut out,
                self.auth_plugin.as_deref().unwrap_or("").as_bytes(),
            );
        }
        if caps & CLIENT_CONNECT_ATTRS != 0 {
            let mut attrs = Vec::new();
            for (k, v) in &self.connect_attrs {
                put_lenenc_bytes(&mut attrs, k.as_bytes());
                put_lenenc_bytes(&mut attrs, v.as_bytes());
            }
            put_lenenc_int(&mut out, attrs.len() as u64);
            out.extend_from_slice(&attrs);
        }
        out
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// True for the 32-byte SSL request a client sends before starting TLS.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && Reader::new(payload)
            .u32()
            .is_ok_and(|caps| u64::from(caps) & CLIENT_SSL != 0)
}

/// 20 random bytes for a greeting; none is NUL or '$' (clients treat those specially).
pub fn generate_scramble() -> [u8; SCRAMBLE_LEN] {
    let mut rng = rand::thread_rng();
    let mut s = [0u8; SCRAMBLE_LEN];
    for b in &mut s {
        *b = loop {
            let c: u8 = rng.gen_range(1..=255);
            if c != b'$' {
                break c;
            }
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Greeting as sent by MariaDB 10.11.19 (Debian 12), scramble replaced.
    fn mariadb_greeting() -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(b"5.5.5-10.11.19-MariaDB-0+deb12u1-log\0");
        p.extend_from_slice(&42u32.to_le_bytes());
        p.extend_from_slice(b"ABCDEFGH\0");
        p.extend_from_slice(&[0xfe, 0xf7, 0x2d, 0x02, 0x00, 0xff, 0x81, 21]);
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&[0x1d, 0, 0, 0]);
        p.extend_from_slice(b"IJKLMNOPQRST\0mysql_native_password\0");
        p
    }

    #[test]
    fn parses_mariadb_greeting() {
        let hs = InitialHandshake::parse(&mariadb_greeting()).unwrap();
        assert_eq!(hs.server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1-log");
        assert_eq!(hs.connection_id, 42);
        assert_eq!(&hs.scramble, b"ABCDEFGHIJKLMNOPQRST");
        assert_eq!(hs.capabilities, 0x81ff_f7fe | 0x1d << 32);
        assert_eq!(hs.charset, UTF8MB4_GENERAL_CI);
        assert_eq!(hs.status, SERVER_STATUS_AUTOCOMMIT);
        assert_eq!(hs.auth_plugin, "mysql_native_password");
        assert_eq!(
            hs.encode(),
            mariadb_greeting(),
            "encode reproduces the server's bytes"
        );
    }

    #[test]
    fn greeting_roundtrip_mysql_caps() {
        let hs = InitialHandshake {
            server_version: "8.0.36".into(),
            connection_id: 7,
            scramble: generate_scramble(),
            capabilities: (CLIENT_MYSQL
                | CLIENT_PROTOCOL_41
                | CLIENT_SECURE_CONNECTION
                | CLIENT_PLUGIN_AUTH
                | CLIENT_DEPRECATE_EOF),
            charset: UTF8MB4_0900_AI_CI,
            status: 2,
            auth_plugin: "caching_sha2_password".into(),
        };
        assert_eq!(InitialHandshake::parse(&hs.encode()).unwrap(), hs);
        for cut in 0..hs.encode().len() {
            let _ = InitialHandshake::parse(&hs.encode()[..cut]);
        }
    }

    #[test]
    fn response_roundtrip() {
        let base = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
        let cases = [
            base | CLIENT_CONNECT_WITH_DB
                | CLIENT_CONNECT_ATTRS
                | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
            base | CLIENT_MYSQL,
            (base | CLIENT_CONNECT_WITH_DB) & !CLIENT_MYSQL | MARIADB_CLIENT_PROGRESS,
        ];
        for caps in cases {
            let r = HandshakeResponse {
                capabilities: caps,
                max_packet: 1 << 24,
                charset: UTF8MB4_GENERAL_CI,
                username: "app".into(),
                auth_response: (1..=20).collect(),
                database: (caps & CLIENT_CONNECT_WITH_DB != 0).then(|| "sbtest".into()),
                auth_plugin: Some("mysql_native_password".into()),
                connect_attrs: if caps & CLIENT_CONNECT_ATTRS != 0 {
                    vec![
                        ("_client_name".into(), "lagless".into()),
                        ("k".into(), String::new()),
                    ]
                } else {
                    vec![]
                },
            };
            let enc = r.encode();
            assert_eq!(HandshakeResponse::parse(&enc).unwrap(), r, "caps {caps:#x}");
            assert!(!is_ssl_request(&enc));
            for cut in 0..enc.len() {
                let _ = HandshakeResponse::parse(&enc[..cut]);
            }
        }
    }

    #[test]
    fn ssl_request() {
        let mut p = Vec::new();
        p.put_u32_le((CLIENT_PROTOCOL_41 | CLIENT_SSL) as u32);
        p.put_u32_le(1 << 24);
        p.put_u8(45);
        p.put_bytes(0, 23);
        assert!(is_ssl_request(&p));
        p[1] = 0; // clears CLIENT_SSL (bit 11)
        assert!(!is_ssl_request(&p));
        assert!(HandshakeResponse::parse(&p).is_err());
    }

    #[test]
    fn scramble_has_no_nul_or_dollar() {
        for _ in 0..200 {
            assert!(generate_scramble().iter().all(|&b| b != 0 && b != b'$'));
        }
    }
}
