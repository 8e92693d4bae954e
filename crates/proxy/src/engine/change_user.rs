//! COM_CHANGE_USER: Lagless re-authenticates the client itself and gives the session fresh
//! backend connections with the new schema and character set (a clean session, as a server does).

use lagless_protocol::consts::{
    self, CLIENT_CONNECT_ATTRS, CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION,
};
use lagless_protocol::lenenc::Reader;
use lagless_protocol::packet::Packet;
use lagless_protocol::ProtocolError;

use super::{Engine, Flow};
use crate::error::{err_packet, SessionError};
use crate::handshake::{authenticate, AuthStart};

/// The fields of a COM_CHANGE_USER payload.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ChangeUser {
    pub user: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub charset: Option<u8>,
    pub plugin: Option<String>,
}

pub(super) fn parse_change_user(payload: &[u8], caps: u64) -> Result<ChangeUser, ProtocolError> {
    let mut r = Reader::new(payload);
    r.skip(1)?;
    let user = String::from_utf8_lossy(r.nul_bytes()?).into_owned();
    let auth_response = if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = r.u8()?;
        r.bytes(usize::from(n))?.to_vec()
    } else {
        r.nul_bytes()?.to_vec()
    };
    let database =
        Some(String::from_utf8_lossy(r.nul_bytes_lenient()).into_owned()).filter(|d| !d.is_empty());
    let charset = if r.remaining() >= 2 {
        Some(r.u16()? as u8)
    } else {
        None
    };
    let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 && !r.is_empty() {
        Some(String::from_utf8_lossy(r.nul_bytes_lenient()).into_owned())
    } else {
        None
    };
    // Connection attributes may follow (CLIENT_CONNECT_ATTRS); Lagless keeps the first ones.
    let _ = caps & CLIENT_CONNECT_ATTRS;
    Ok(ChangeUser {
        user,
        auth_response,
        database,
        charset,
        plugin,
    })
}

impl Engine {
    pub(super) async fn change_user(&mut self, packet: Packet) -> Result<Flow, SessionError> {
        let seq = packet.last_seq.wrapping_add(1);
        let change = match parse_change_user(&packet.payload, self.client.capabilities) {
            Ok(c) => c,
            Err(e) => {
                let err = err_packet(
                    consts::ER_NET_READ_ERROR,
                    format!("Malformed COM_CHANGE_USER: {e}"),
                );
                self.client.queue_err(seq, &err);
                self.client.flush().await?;
                return Ok(Flow::Close);
            }
        };
        let scramble = self.identity.scramble;
        tracing::debug!(user = %change.user, plugin = ?change.plugin, len = change.auth_response.len(), "COM_CHANGE_USER");
        let outcome = authenticate(
            &mut self.client,
            &self.ctx,
            AuthStart {
                user: &change.user,
                plugin: change.plugin.as_deref(),
                scramble: &scramble,
                response: &change.auth_response,
                seq,
                peer: self.peer,
            },
        )
        .await?;
        let Some(next_seq) = outcome else {
            // Refused: like a server, close the connection after the error.
            return Ok(Flow::Close);
        };
        self.identity.user = change.user;
        self.identity.database = change.database.clone();
        self.identity.next_seq = next_seq;
        if let Some(cs) = change.charset {
            self.identity.charset = cs;
        }
        self.backends.drop_all();
        self.backends.settings.database = change.database.clone();
        self.backends.settings.charset = self.identity.charset;
        // A new user may have another cluster and route: start the routing state afresh.
        for r in self.routing.sticky.iter().flatten() {
            self.ctx.cluster.sticky(*r, false);
        }
        let user = self.config.user(&self.identity.user);
        let cluster = self
            .config
            .clusters
            .iter()
            .position(|c| user.is_some_and(|u| u.cluster == c.name))
            .unwrap_or(0);
        let primary_only = user.is_some_and(|u| u.route == lagless_config::UserRoute::Primary);
        self.routing = lagless_routing::SessionRouting::new(
            cluster,
            self.config.clusters.len(),
            &self.identity.user,
            change.database.clone(),
            primary_only,
        );
        self.routing.consistency = user
            .and_then(|u| u.consistency)
            .unwrap_or(self.config.consistency.default);
        self.reset_state(change.database);
        Ok(if self.open().await? {
            Flow::Continue
        } else {
            Flow::Close
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lagless_protocol::consts::*;

    #[test]
    fn parses_a_mysql_client_change_user() {
        let mut p = vec![0x11];
        p.extend_from_slice(b"app\0");
        p.push(20);
        p.extend_from_slice(&[7u8; 20]);
        p.extend_from_slice(b"shop\0");
        p.extend_from_slice(&45u16.to_le_bytes());
        p.extend_from_slice(b"mysql_native_password\0");
        let caps = CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_PROTOCOL_41;
        let c = parse_change_user(&p, caps).unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.auth_response, vec![7u8; 20]);
        assert_eq!(c.database.as_deref(), Some("shop"));
        assert_eq!(c.charset, Some(45));
        assert_eq!(c.plugin.as_deref(), Some("mysql_native_password"));
    }

    #[test]
    fn truncated_change_user_is_an_error() {
        let caps = CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
        assert!(parse_change_user(&[0x11, b'a'], caps).is_err());
        assert!(parse_change_user(&[0x11, b'a', 0, 20, 1], caps).is_err());
    }
}
