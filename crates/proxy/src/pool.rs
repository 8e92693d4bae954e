//! Backend connections shared by client sessions: idle connections per server, and a cap on
//! the connections open to each server.
//!
//! A connection remembers the protocol options it was opened with (capabilities, character
//! set): those change what the server sends, so a session only takes a connection whose options
//! match its own. Session variables and schema are not part of the match: the engine brings a
//! connection to the session's state before using it (see `engine::state`).
//!
//! With one runtime per worker thread (`[listener] runtime = "thread_per_core"`), each worker
//! is a shard with its own idle connections and its share of the cap: a connection's socket is
//! registered with the runtime that opened it, and used from another worker it would need that
//! worker's thread to wake the session's. Sessions are spread evenly over the workers, so even
//! shares fit; a shard never closes another's connections to make room.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lagless_config::Config;
use lagless_routing::ServerRef;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::backends::{open_conn, BackendConn, BackendSettings};
use crate::error::SessionError;
use lagless_protocol::response::Expect;

/// What a backend connection must share with a session to serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolKey {
    pub capabilities: u64,
    pub charset: u8,
}

/// Session variables that `SET ... = DEFAULT` cannot put back as the handshake left them: they
/// follow the handshake's character set, not the global value. Their values after a handshake
/// are read once per server and character set, and put back with those values.
pub const HANDSHAKE_VARS: &[&str] = &[
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
];

/// The values of [`HANDSHAKE_VARS`] right after a handshake with one character set.
pub type HandshakeVars = Arc<Vec<(String, String)>>;

struct ServerPool {
    /// One per worker runtime.
    shards: Vec<ShardPool>,
    /// [`HANDSHAKE_VARS`] per handshake character set, learned from the first connection.
    handshake: Mutex<Vec<(u8, HandshakeVars)>>,
}

/// A server's connections on one worker runtime.
struct ShardPool {
    /// Boxed, like the sessions' (see `SessionBackends`): a connection moves in and out after
    /// every statement of a multiplexed session, as a pointer rather than a few hundred bytes.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<BackendConn>>>,
    /// One permit per open connection when the server has a cap: this shard's share of it.
    permits: Option<Arc<Semaphore>>,
    /// Woken when a connection is given back.
    returned: Notify,
}

/// The pools of every server, indexed like the configuration's clusters and servers.
pub struct Pool {
    servers: Vec<Vec<ServerPool>>,
    max_idle: usize,
    wait_timeout: Duration,
    cap: Option<u32>,
    /// Each shard's share of `cap`.
    shard_caps: Vec<u32>,
    /// Logins to backend servers (a pooled connection taken again is not one).
    pub logins: AtomicU64,
}

impl Pool {
    /// Pools for `shards` worker runtimes (1 with the multi-threaded runtime). A cap per
    /// server is split evenly between the shards; each gets at least one connection, so a cap
    /// below `shards` is exceeded (the binary refuses to start then: see `shards_fit_the_cap`).
    pub fn new(config: &Config, shards: usize) -> Self {
        let settings = config.pool;
        let shards = shards.max(1);
        let shard_caps: Vec<u32> = match settings.max_per_server {
            None => Vec::new(),
            Some(cap) => (0..shards as u32)
                .map(|i| (cap / shards as u32 + u32::from(i < cap % shards as u32)).max(1))
                .collect(),
        };
        Pool {
            servers: config
                .clusters
                .iter()
                .map(|c| {
                    c.servers
                        .iter()
                        .map(|_| ServerPool {
                            shards: (0..shards)
                                .map(|i| ShardPool {
                                    idle: Mutex::new(Vec::new()),
                                    permits: shard_caps
                                        .get(i)
                                        .map(|&n| Arc::new(Semaphore::new(n as usize))),
                                    returned: Notify::new(),
                                })
                                .collect(),
                            handshake: Mutex::new(Vec::new()),
                        })
                        .collect()
                })
                .collect(),
            // The limit is per server: each shard keeps its share.
            max_idle: (settings.max_idle_per_server as usize).div_ceil(shards),
            wait_timeout: settings.wait_timeout,
            cap: settings.max_per_server,
            shard_caps,
            logins: AtomicU64::new(0),
        }
    }

    fn server(&self, r: ServerRef) -> &ServerPool {
        &self.servers[r.cluster][r.server]
    }

    /// Whether `shards` worker runtimes each get at least one connection per server under
    /// `config`'s cap.
    pub fn shards_fit_the_cap(config: &Config, shards: usize) -> bool {
        config
            .pool
            .max_per_server
            .is_none_or(|cap| cap as usize >= shards)
    }

    /// A connection to `r` for a session with `settings` on `shard`: an idle one of that
    /// shard if one matches, else a new one, waiting (up to `[pool] wait_timeout_ms`) while the
    /// server is at its cap.
    ///
    /// # Errors
    /// The server cannot be reached or refused the login; no connection freed up in time.
    pub async fn checkout(
        &self,
        config: &Config,
        r: ServerRef,
        settings: &BackendSettings,
        shard: usize,
    ) -> Result<Box<BackendConn>, SessionError> {
        let sp = &self.server(r).shards[shard];
        let key = PoolKey {
            capabilities: settings.capabilities,
            charset: settings.charset,
        };
        // The common case, every statement of a multiplexed session: an idle connection is
        // there. No wake-up registration and no deadline needed for it.
        if let Some(conn) = self.take_idle(r, key, settings.database.as_deref(), shard) {
            return Ok(conn);
        }
        let deadline = Instant::now() + self.wait_timeout;
        loop {
            let returned = sp.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if let Some(conn) = self.take_idle(r, key, settings.database.as_deref(), shard) {
                return Ok(conn);
            }
            let permit = match &sp.permits {
                None => None,
                Some(sem) => match sem.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    // Idle connections of another shape hold permits: close one to make room.
                    Err(_) if self.evict_one(r, shard) => continue,
                    Err(_) => {
                        let acquire = sem.clone().acquire_owned();
                        tokio::select! {
                            p = acquire => p.ok(),
                            () = &mut returned => continue,
                            () = tokio::time::sleep_until(deadline) => {
                                return Err(SessionError::PoolExhausted {
                                    server: config.clusters[r.cluster].servers[r.server].name.clone(),
                                    cap: self.cap.unwrap_or(0),
                                    waited: self.wait_timeout,
                                });
                            }
                        }
                    }
                },
            };
            self.logins.fetch_add(1, Ordering::Relaxed);
            let mut conn = Box::new(open_conn(config, r, settings, shard).await?);
            conn.permit = permit;
            conn.handshake_vars = self.handshake_vars(&mut conn).await;
            return Ok(conn);
        }
    }

    /// The character-set variables a handshake like `conn`'s sets, read on `conn` (just logged
    /// in) the first time. None if they could not be read: such connections are not shared
    /// once a session changed them.
    async fn handshake_vars(&self, conn: &mut BackendConn) -> Option<HandshakeVars> {
        let sp = self.server(conn.server);
        let charset = conn.key.charset;
        let known = |sp: &ServerPool| {
            sp.handshake.lock().ok().and_then(|h| {
                h.iter()
                    .find(|(c, _)| *c == charset)
                    .map(|(_, v)| v.clone())
            })
        };
        if let Some(v) = known(sp) {
            return Some(v);
        }
        let sql = format!("\x03SELECT @@{}", HANDSHAKE_VARS.join(", @@"));
        let reply = crate::relay::command(conn, sql.as_bytes(), Expect::Query)
            .await
            .ok()?;
        if reply.error.is_some() {
            return None;
        }
        // Column count, definitions, [EOF], the row, EOF/OK: the row is the packet before last.
        let row = &reply
            .packets
            .get(reply.packets.len().checked_sub(2)?)?
            .payload;
        let mut r = lagless_protocol::lenenc::Reader::new(row);
        let mut values = Vec::new();
        for name in HANDSHAKE_VARS {
            let v = r.lenenc_bytes_or_null().ok()??;
            values.push((name.to_string(), String::from_utf8_lossy(v).into_owned()));
        }
        let values = Arc::new(values);
        if let Ok(mut h) = sp.handshake.lock() {
            h.push((charset, values.clone()));
        }
        Some(values)
    }

    /// Takes the most recently used idle connection that fits, checking it is still open.
    fn take_idle(
        &self,
        r: ServerRef,
        key: PoolKey,
        schema: Option<&str>,
        shard: usize,
    ) -> Option<Box<BackendConn>> {
        loop {
            let conn = {
                let mut idle = self.server(r).shards[shard].idle.lock().ok()?;
                // A session without a schema cannot use a connection that has one (there is no
                // statement to leave a schema); the same schema first, it saves a COM_INIT_DB.
                let fits =
                    |c: &BackendConn| c.key == key && (schema.is_some() || c.schema.is_none());
                let pos = idle
                    .iter()
                    .rposition(|c| fits(c) && c.schema.as_deref() == schema)
                    .or_else(|| idle.iter().rposition(|c| fits(c)))?;
                idle.swap_remove(pos)
            };
            if still_open(&conn) {
                return Some(conn);
            }
        }
    }

    fn evict_one(&self, r: ServerRef, shard: usize) -> bool {
        let idle = &self.server(r).shards[shard].idle;
        let evicted = idle.lock().ok().and_then(|mut i| i.pop());
        evicted.is_some()
    }

    /// Gives a connection back for other sessions, or closes it when it cannot be shared or
    /// enough are idle.
    pub fn give_back(&self, mut conn: Box<BackendConn>) {
        if !conn.clean
            || !conn.buf.is_empty()
            || (conn.handshake_vars.is_none()
                && conn
                    .vars
                    .iter()
                    .any(|(n, _)| HANDSHAKE_VARS.contains(&n.as_str())))
        {
            tracing::debug!(server = %conn.server_name, clean = conn.clean, unread = conn.buf.len(), vars = ?conn.vars, "backend connection closed, not pooled");
            return;
        }
        // The next user brings it to its own state (see `TrackedState::sync`).
        conn.synced_version = u64::MAX;
        let sp = &self.server(conn.server).shards[conn.shard];
        if let Ok(mut idle) = sp.idle.lock() {
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        sp.returned.notify_one();
    }

    /// Idle connections per server, for SHOW LAGLESS BACKENDS and tests.
    pub fn idle_count(&self, r: ServerRef) -> usize {
        self.server(r)
            .shards
            .iter()
            .map(|s| s.idle.lock().map_or(0, |i| i.len()))
            .sum()
    }

    /// Connections open to `r` (in use and idle), when the server has a cap.
    pub fn open_count(&self, r: ServerRef) -> Option<usize> {
        self.cap?;
        let shards = self.server(r).shards.iter().zip(&self.shard_caps);
        let free = |s: &ShardPool| s.permits.as_ref().map_or(0, |p| p.available_permits());
        Some(shards.map(|(s, &cap)| cap as usize - free(s)).sum())
    }
}

/// An idle connection the server closed (wait_timeout, KILL, a restart) is readable with EOF;
/// one that sent something unasked is unusable too.
fn still_open(conn: &BackendConn) -> bool {
    let mut probe = [0u8; 1];
    matches!(conn.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// A permit held by a connection counts it against its server's cap until it is dropped.
pub type Permit = OwnedSemaphorePermit;

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../lagless.example.toml");

    /// The example configuration with `max_per_server` and `max_idle_per_server` set.
    fn config(cap: u32, max_idle: u32) -> Config {
        let text = EXAMPLE
            .replace("max_per_server = 0", &format!("max_per_server = {cap}"))
            .replace(
                "max_idle_per_server = 64",
                &format!("max_idle_per_server = {max_idle}"),
            );
        lagless_config::from_toml_str(&text).unwrap()
    }

    #[test]
    fn a_cap_is_split_between_the_shards_and_still_holds() {
        let pool = Pool::new(&config(5, 5), 3);
        assert_eq!(pool.shard_caps, [2, 2, 1]);
        let r = ServerRef {
            cluster: 0,
            server: 0,
        };
        assert_eq!(pool.open_count(r), Some(0));
        assert_eq!(pool.max_idle, 2);
        assert!(Pool::shards_fit_the_cap(&config(3, 64), 3));
        assert!(!Pool::shards_fit_the_cap(&config(2, 64), 3));
        assert!(Pool::shards_fit_the_cap(&config(0, 64), 64));
    }

    #[test]
    fn without_a_cap_no_shard_counts_connections() {
        let pool = Pool::new(&config(0, 64), 2);
        assert!(pool.shard_caps.is_empty());
        let r = ServerRef {
            cluster: 0,
            server: 0,
        };
        assert_eq!(pool.open_count(r), None);
    }
}
