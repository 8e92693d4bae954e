//! Packets exchanged during authentication after the handshake response.

use crate::lenenc::Reader;
use crate::ProtocolError;

/// Server asks the client to restart authentication with another plugin (0xFE header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSwitchRequest {
    pub plugin: String,
    /// Plugin data; for the password plugins, the 20-byte scramble followed by a NUL.
    pub data: Vec<u8>,
}

impl AuthSwitchRequest {
    pub const HEADER: u8 = 0xfe;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.plugin.len() + self.data.len());
        out.push(Self::HEADER);
        out.extend_from_slice(self.plugin.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.data);
        out
    }

    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8()? != Self::HEADER {
            return Err(ProtocolError::Malformed("not an auth switch request"));
        }
        if r.is_empty() {
            // Pre-4.1 "use the old password" request.
            return Ok(Self {
                plugin: "mysql_old_password".into(),
                data: Vec::new(),
            });
        }
        let plugin = String::from_utf8_lossy(r.nul_bytes_lenient()).into_owned();
        Ok(Self {
            plugin,
            data: r.rest().to_vec(),
        })
    }

    /// The scramble carried in `data`, without the trailing NUL.
    pub fn scramble(&self) -> &[u8] {
        self.data.strip_suffix(&[0]).unwrap_or(&self.data)
    }
}

/// Extra authentication data in either direction (0x01 header), e.g. caching_sha2's
/// fast-auth-success / perform-full-auth bytes or a PEM public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMoreData {
    pub data: Vec<u8>,
}

impl AuthMoreData {
    pub const HEADER: u8 = 0x01;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.data.len());
        out.push(Self::HEADER);
        out.extend_from_slice(&self.data);
        out
    }

    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        match payload.split_first() {
            Some((&Self::HEADER, data)) => Ok(Self {
                data: data.to_vec(),
            }),
            Some(_) => Err(ProtocolError::Malformed("not an auth-more-data packet")),
            None => Err(ProtocolError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_switch_roundtrip() {
        let mut data = b"ABCDEFGHIJKLMNOPQRST".to_vec();
        data.push(0);
        let req = AuthSwitchRequest {
            plugin: "mysql_native_password".into(),
            data,
        };
        let enc = req.encode();
        assert_eq!(enc[0], 0xfe);
        let back = AuthSwitchRequest::parse(&enc).unwrap();
        assert_eq!(back, req);
        assert_eq!(back.scramble(), b"ABCDEFGHIJKLMNOPQRST");
        assert_eq!(
            AuthSwitchRequest::parse(&[0xfe]).unwrap().plugin,
            "mysql_old_password"
        );
        assert!(AuthSwitchRequest::parse(&[]).is_err());
        assert!(AuthSwitchRequest::parse(&[0x00]).is_err());
    }

    #[test]
    fn auth_more_data_roundtrip() {
        let m = AuthMoreData {
            data: vec![super::super::CACHING_SHA2_FAST_AUTH_SUCCESS],
        };
        assert_eq!(m.encode(), [0x01, 0x03]);
        assert_eq!(AuthMoreData::parse(&m.encode()).unwrap(), m);
        assert!(AuthMoreData::parse(&[]).is_err());
        assert!(AuthMoreData::parse(&[0xfe, 1]).is_err());
    }
}
