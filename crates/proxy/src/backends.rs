//! The backend connections of one client session, opened lazily with the session's settings.
//!
//! A session may use several servers of its cluster (the routing step decides which); each gets a
//! connection logged in with the cluster's credentials and the client's schema, character set and
//! protocol options, so that results can be relayed to the client byte for byte.

use std::time::Duration;

use bytes::BytesMut;
use lagless_backend::{login, LoginOptions};
use lagless_config::Cluster;
use lagless_protocol::consts::*;
use tokio::net::TcpStream;

use crate::error::SessionError;

/// One logged-in server connection.
pub struct BackendConn {
    pub server_name: String,
    pub stream: TcpStream,
    /// Bytes read from the server and not yet relayed.
    pub buf: BytesMut,
    pub capabilities: u64,
    pub server_version: String,
    pub connection_id: u32,
}

/// What every backend connection of a session is opened with.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    pub database: Option<String>,
    pub charset: u8,
    pub capabilities: u64,
    pub connect_attrs: Vec<(String, String)>,
    pub connect_timeout: Duration,
    pub max_packet: u32,
}

/// Backend capabilities for a client: protocol options that change what the server sends are
/// mirrored from the client; SESSION_TRACK is always requested because Lagless reads the session
/// state (and later the GTID of each write) from OK packets, and strips it for clients that did
/// not ask for it.
pub fn backend_capabilities(client: u64, local_infile: bool) -> u64 {
    let base = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_CONNECT_WITH_DB
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CLIENT_CONNECT_ATTRS
        | CLIENT_SESSION_TRACK;
    let mut mirrored = CLIENT_FOUND_ROWS
        | CLIENT_IGNORE_SPACE
        | CLIENT_INTERACTIVE
        | CLIENT_MULTI_STATEMENTS
        | CLIENT_MULTI_RESULTS
        | CLIENT_PS_MULTI_RESULTS
        | CLIENT_DEPRECATE_EOF;
    if local_infile {
        mirrored |= CLIENT_LOCAL_FILES;
    }
    base | (client & mirrored)
}

/// The session's connections, indexed like the cluster's servers.
pub struct SessionBackends {
    conns: Vec<Option<BackendConn>>,
    pub settings: BackendSettings,
}

impl SessionBackends {
    pub fn new(cluster: &Cluster, settings: BackendSettings) -> Self {
        SessionBackends {
            conns: cluster.servers.iter().map(|_| None).collect(),
            settings,
        }
    }

    /// The connection to server `index` of `cluster`, logging in first if there is none.
    ///
    /// # Errors
    /// The server is unreachable or refused the login (e.g. unknown database).
    pub async fn get(
        &mut self,
        cluster: &Cluster,
        index: usize,
    ) -> Result<&mut BackendConn, SessionError> {
        if self.conns[index].is_none() {
            let conn = self.connect(cluster, index).await?;
            self.conns[index] = Some(conn);
        }
        Ok(self.conns[index].as_mut().expect("connected above"))
    }

    async fn connect(&self, cluster: &Cluster, index: usize) -> Result<BackendConn, SessionError> {
        let server = &cluster.servers[index];
        let opts = LoginOptions {
            addr: server.address.clone(),
            user: cluster.backend_user.clone(),
            password: cluster.backend_password.clone(),
            database: self.settings.database.clone(),
            capabilities: self.settings.capabilities,
            charset: self.settings.charset,
            connect_attrs: self.settings.connect_attrs.clone(),
            connect_timeout: self.settings.connect_timeout,
            max_packet: self.settings.max_packet,
        };
        let login = login(&opts).await.map_err(|source| SessionError::Backend {
            server: server.name.clone(),
            source,
        })?;
        Ok(BackendConn {
            server_name: server.name.clone(),
            stream: login.stream,
            buf: login.read_buf,
            capabilities: login.capabilities,
            server_version: login.server_version,
            connection_id: login.connection_id,
        })
    }

    /// Forgets a connection (after an error, or to reopen it with new settings).
    pub fn drop_conn(&mut self, index: usize) {
        self.conns[index] = None;
    }

    pub fn drop_all(&mut self) {
        self.conns.iter_mut().for_each(|c| *c = None);
    }
}
