//! One client command at a time: intercept what Lagless answers itself, choose the backend,
//! execute there and relay the response.
//!
//! Parts: [`change_user`] (COM_CHANGE_USER, answered by Lagless), [`route`] (the routing seam).

mod change_user;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use lagless_config::{Cluster, Config};
use lagless_protocol::consts::{self, Command};
use lagless_protocol::ok_err::{session_changes, OkPacket, SessionChange};
use lagless_protocol::packet::{encode_packet, Packet};
use lagless_protocol::response::Expect;
use tokio::io::AsyncWriteExt;
use tracing::debug;

use crate::backends::{backend_capabilities, BackendSettings, SessionBackends};
use crate::client::ClientConn;
use crate::context::ProxyContext;
use crate::error::{err_packet, SessionError};
use crate::handshake::ClientIdentity;
use crate::relay::relay_response;

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// A client session after authentication.
pub struct Engine {
    ctx: Arc<ProxyContext>,
    /// The configuration snapshot this session started with.
    config: Arc<Config>,
    cluster: usize,
    pub client: ClientConn,
    identity: ClientIdentity,
    peer: SocketAddr,
    backends: SessionBackends,
}

impl Engine {
    pub fn new(
        ctx: Arc<ProxyContext>,
        client: ClientConn,
        identity: ClientIdentity,
        peer: SocketAddr,
    ) -> Self {
        let config = ctx.config.clone();
        let cluster = config
            .clusters
            .iter()
            .position(|c| {
                config
                    .user(&identity.user)
                    .is_some_and(|u| u.cluster == c.name)
            })
            .unwrap_or(0);
        let settings = backend_settings(&ctx, &client, &identity);
        let backends = SessionBackends::new(&config.clusters[cluster], settings);
        Engine {
            ctx,
            config,
            cluster,
            client,
            identity,
            peer,
            backends,
        }
    }

    fn cluster(&self) -> &Cluster {
        &self.config.clusters[self.cluster]
    }

    /// Finishes the handshake: the primary connection is opened now so that an unknown database
    /// or an unreachable cluster is reported at connect time, as a server would.
    /// Returns false when the client was refused.
    ///
    /// # Errors
    /// Client I/O errors.
    pub async fn open(&mut self) -> Result<bool, SessionError> {
        let seq = self.identity.next_seq;
        let primary = route::primary_index(self.cluster());
        let cluster = self.config.clusters[self.cluster].clone();
        match self.backends.get(&cluster, primary).await {
            Ok(conn) => {
                debug!(backend = %conn.server_name, backend_id = conn.connection_id, "client authenticated");
                let ok = OkPacket {
                    status: consts::SERVER_STATUS_AUTOCOMMIT,
                    ..OkPacket::default()
                };
                self.client.queue_ok(seq, &ok);
                self.client.flush().await?;
                Ok(true)
            }
            Err(e) => {
                self.send_error(seq, &e).await?;
                Ok(false)
            }
        }
    }

    /// Executes one command packet from the client.
    ///
    /// # Errors
    /// Errors that end the session (client I/O, a result broken after bytes reached the client).
    pub async fn handle(&mut self, packet: Packet) -> Result<Flow, SessionError> {
        let Some(&code) = packet.payload.first() else {
            let err = err_packet(consts::ER_NET_READ_ERROR, "Malformed packet: empty command");
            self.client.queue_err(1, &err);
            self.client.flush().await?;
            return Ok(Flow::Continue);
        };
        let expect = match Command::from_u8(code) {
            Some(Command::Quit) => return Ok(Flow::Close),
            Some(Command::ChangeUser) => return self.change_user(packet).await,
            Some(Command::Query | Command::StmtExecute | Command::ProcessInfo) => {
                Some(Expect::Query)
            }
            Some(Command::StmtPrepare) => Some(Expect::Prepare),
            Some(Command::StmtFetch) => Some(Expect::Fetch),
            Some(Command::FieldList) => Some(Expect::FieldList),
            Some(
                Command::Ping
                | Command::InitDb
                | Command::Statistics
                | Command::SetOption
                | Command::StmtReset
                | Command::ResetConnection
                | Command::Refresh
                | Command::Debug,
            ) => Some(Expect::Single),
            Some(Command::StmtSendLongData | Command::StmtClose) => None,
            other => {
                let name = other.map_or("unknown", |c| c.name());
                let err = err_packet(
                    consts::ER_UNKNOWN_COM_ERROR,
                    format!("Unknown command {code:#04x} ({name}): not supported through Lagless"),
                );
                self.client.queue_err(packet.last_seq.wrapping_add(1), &err);
                self.client.flush().await?;
                return Ok(Flow::Continue);
            }
        };
        self.execute(packet, expect).await
    }

    /// Sends the command to the routed backend and relays its response.
    async fn execute(
        &mut self,
        packet: Packet,
        expect: Option<Expect>,
    ) -> Result<Flow, SessionError> {
        let target = route::route(self.cluster(), &packet);
        let reply_seq = packet.last_seq.wrapping_add(1);
        let cluster = self.config.clusters[self.cluster].clone();
        let conn = match self.backends.get(&cluster, target).await {
            Ok(c) => c,
            Err(e) => {
                self.send_error(reply_seq, &e).await?;
                return Ok(Flow::Continue);
            }
        };
        let mut framed = BytesMut::with_capacity(packet.payload.len() + 4);
        encode_packet(packet.seq, &packet.payload, &mut framed);
        if conn.stream.write_all(&framed).await.is_err() {
            let e = SessionError::BackendLost {
                server: conn.server_name.clone(),
            };
            self.backends.drop_conn(target);
            self.send_error(reply_seq, &e).await?;
            return Ok(Flow::Continue);
        }
        let Some(expect) = expect else {
            return Ok(Flow::Continue);
        };
        let mut new_schema: Option<String> = None;
        let backend_caps = conn.capabilities;
        let relayed = relay_response(conn, &mut self.client, expect, |ok| {
            if let Some(schema) = schema_change(ok, backend_caps) {
                new_schema = Some(schema);
            }
        })
        .await;
        if let Some(schema) = new_schema {
            // New backend connections of this session must open in the schema it switched to.
            self.backends.settings.database = Some(schema);
        }
        match relayed {
            Ok(_) => Ok(Flow::Continue),
            Err(r) => {
                self.ctx
                    .stats
                    .backend_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.backends.drop_conn(target);
                if r.client_saw_bytes || matches!(r.error, SessionError::ClientIo(_)) {
                    // Part of the result already reached the client: the only honest signal left
                    // is closing the connection, as a server that died would.
                    return Err(r.error);
                }
                self.send_error(reply_seq, &r.error).await?;
                Ok(Flow::Continue)
            }
        }
    }

    async fn send_error(&mut self, seq: u8, e: &SessionError) -> Result<(), SessionError> {
        debug!(error = %e, "command failed");
        if let Some(err) = e.to_err_packet() {
            self.client.queue_err(seq, &err);
        }
        self.client.flush().await
    }
}

/// The schema an OK packet reports the session switched to (USE, COM_INIT_DB, DROP DATABASE).
fn schema_change(ok_payload: &[u8], capabilities: u64) -> Option<String> {
    let ok = OkPacket::parse(ok_payload, capabilities).ok()?;
    session_changes(&ok.session_state).find_map(|c| match c {
        Ok(SessionChange::Schema(name)) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    })
}

fn backend_settings(
    ctx: &ProxyContext,
    client: &ClientConn,
    identity: &ClientIdentity,
) -> BackendSettings {
    let mut attrs = identity.connect_attrs.clone();
    attrs.push(("_lagless_client_user".into(), identity.user.clone()));
    BackendSettings {
        database: identity.database.clone(),
        charset: identity.charset,
        capabilities: backend_capabilities(client.capabilities, ctx.config.listener.local_infile),
        connect_attrs: attrs,
        connect_timeout: ctx.config.timeouts.connect,
        max_packet: u32::try_from(ctx.config.listener.max_allowed_packet).unwrap_or(u32::MAX),
    }
}
