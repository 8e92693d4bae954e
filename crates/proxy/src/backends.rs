//! The backend connections of one client session, opened lazily with the session's settings.
//!
//! A session may use several servers of its cluster (the routing step decides which); each gets a
//! connection logged in with the cluster's credentials and the client's schema, character set and
//! protocol options, so that results can be relayed to the client byte for byte.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use lagless_backend::{login, LoginOptions, NetStream};
use lagless_config::{Config, Role};
use lagless_protocol::consts::*;
use lagless_protocol::response::Expect;
use lagless_routing::ServerRef;

use crate::error::SessionError;
use crate::pool::{HandshakeVars, Permit, Pool, PoolKey};
use crate::stmt_cache::{StmtCache, StmtKey};

impl BackendConn {
    /// The key of `sql` among the statements prepared on this connection, in its current
    /// schema and variables (see `crate::stmt_cache`).
    pub fn stmt_key(&self, sql: &Arc<str>) -> StmtKey {
        StmtKey {
            context: crate::stmt_cache::context_of(self.schema.as_deref(), &self.vars),
            sql: sql.clone(),
        }
    }
}

/// One logged-in server connection.
pub struct BackendConn {
    pub server: ServerRef,
    pub server_name: String,
    pub is_primary: bool,
    pub stream: NetStream,
    /// Bytes read from the server and not yet relayed.
    pub buf: BytesMut,
    /// Commands being sent, reused from one statement to the next.
    pub wbuf: BytesMut,
    pub capabilities: u64,
    pub server_version: String,
    pub connection_id: u32,
    /// Version of the session's tracked state this connection has (see `engine::state`).
    pub synced_version: u64,
    /// The schema this connection is in.
    pub schema: Option<String>,
    /// Session variables this connection has that differ from a new connection's (what
    /// Lagless replayed on it or saw it change), so that the next session can be brought to
    /// its own state with the difference only.
    pub vars: Vec<(String, String)>,
    /// The protocol options it was opened with: sessions share it only when theirs match.
    pub key: PoolKey,
    /// No command is half-way: a response not fully read makes the connection unusable.
    pub clean: bool,
    /// Bytes of the response being relayed have started to reach the client: a statement
    /// abandoned now cannot be retried elsewhere unseen.
    pub answering: bool,
    /// The pool shard (worker runtime) it belongs to: its socket is registered there.
    pub shard: usize,
    /// Counts the connection against its server's cap (`[pool] max_per_server`).
    pub permit: Option<Permit>,
    /// The character-set variables as its handshake set them (see `pool::HANDSHAKE_VARS`).
    pub handshake_vars: Option<HandshakeVars>,
    /// The statements prepared on it, for whichever session uses it next.
    pub stmts: StmtCache,
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

/// The session's connections, indexed like the configuration's clusters and servers.
pub struct SessionBackends {
    /// Boxed: a connection moves between the session and the pool after every statement of a
    /// multiplexed session, and a `BackendConn` is a few hundred bytes.
    conns: Vec<Vec<Option<Box<BackendConn>>>>,
    pub settings: BackendSettings,
    pool: Arc<Pool>,
    /// The pool shard of the worker runtime this session runs on.
    shard: usize,
}

/// Makes a server report every session variable a statement changes, so that Lagless can
/// replay them on the session's other connections.
const TRACK_ALL: &[u8] = b"\x03SET SESSION session_track_system_variables = '*'";

impl SessionBackends {
    pub fn new(config: &Config, settings: BackendSettings, pool: Arc<Pool>, shard: usize) -> Self {
        SessionBackends {
            conns: config
                .clusters
                .iter()
                .map(|c| c.servers.iter().map(|_| None).collect())
                .collect(),
            settings,
            pool,
            shard,
        }
    }

    /// The connection to server `r`: the session's own, else one from the pool, else a new
    /// login.
    ///
    /// # Errors
    /// The server is unreachable or refused the login (e.g. unknown database).
    pub async fn get(
        &mut self,
        config: &Config,
        r: ServerRef,
    ) -> Result<&mut BackendConn, SessionError> {
        if self.conns[r.cluster][r.server].is_none() {
            let conn = self
                .pool
                .checkout(config, r, &self.settings, self.shard)
                .await?;
            self.conns[r.cluster][r.server] = Some(conn);
        }
        Ok(self.conns[r.cluster][r.server]
            .as_deref_mut()
            .expect("connected above"))
    }

    /// The connection to `r` if one is open.
    pub fn existing(&mut self, r: ServerRef) -> Option<&mut BackendConn> {
        self.conns[r.cluster][r.server].as_deref_mut()
    }

    /// Every open connection.
    pub fn open_conns(&mut self) -> impl Iterator<Item = &mut BackendConn> {
        self.conns.iter_mut().flatten().flatten().map(|c| &mut **c)
    }

    /// Forgets a connection (after an error, or to reopen it with new settings).
    pub fn drop_conn(&mut self, r: ServerRef) {
        self.conns[r.cluster][r.server] = None;
    }

    pub fn drop_all(&mut self) {
        self.conns.iter_mut().flatten().for_each(|c| *c = None);
    }

    /// Gives the session's connections back to the pool, except `keep`'s.
    pub fn release(&mut self, keep: Option<ServerRef>) {
        for conn in self.conns.iter_mut().flatten() {
            if conn.as_ref().is_some_and(|c| Some(c.server) != keep) {
                if let Some(c) = conn.take() {
                    self.pool.give_back(c);
                }
            }
        }
    }

    /// The pool shard (worker runtime) the session runs on.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Whether the session holds a connection to `r`.
    pub fn holds(&self, r: ServerRef) -> bool {
        self.conns[r.cluster][r.server].is_some()
    }
}

/// Logs in to server `r` with a session's settings and turns on full session tracking, for
/// pool shard `shard` (the worker runtime this runs on).
///
/// # Errors
/// The server is unreachable or refused the login.
pub async fn open_conn(
    config: &Config,
    r: ServerRef,
    settings: &BackendSettings,
    shard: usize,
) -> Result<BackendConn, SessionError> {
    let cluster = &config.clusters[r.cluster];
    let server = &cluster.servers[r.server];
    let opts = LoginOptions {
        addr: server.dial().to_string(),
        user: cluster.backend_user.clone(),
        password: cluster.backend_password.clone(),
        database: settings.database.clone(),
        capabilities: settings.capabilities,
        charset: settings.charset,
        connect_attrs: settings.connect_attrs.clone(),
        connect_timeout: settings.connect_timeout,
        max_packet: settings.max_packet,
    };
    let login = login(&opts).await.map_err(|source| SessionError::Backend {
        server: server.name.clone(),
        source,
    })?;
    let mut conn = BackendConn {
        server: r,
        server_name: server.name.clone(),
        // Refreshed from the routing view before every statement (see `Engine::attempt`).
        is_primary: server.role == Role::Primary,
        stream: login.stream,
        buf: login.read_buf,
        wbuf: BytesMut::with_capacity(1024),
        capabilities: login.capabilities,
        server_version: login.server_version,
        connection_id: login.connection_id,
        synced_version: 0,
        schema: settings.database.clone(),
        vars: Vec::new(),
        key: PoolKey {
            capabilities: settings.capabilities,
            charset: settings.charset,
        },
        clean: true,
        answering: false,
        shard,
        permit: None,
        handshake_vars: None,
        stmts: StmtCache::default(),
    };
    let reply = crate::relay::command(&mut conn, TRACK_ALL, Expect::Query).await?;
    if let Some(err) = reply.error {
        tracing::warn!(server = %server.name, code = err.code, "cannot enable session tracking: {}", err.message);
    }
    Ok(conn)
}
