//! State shared by every session, handed to them explicitly (no process-wide statics).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use lagless_config::Config;
use lagless_protocol::auth::RsaKeyPair;

use lagless_routing::gtid::MariaPos;

use crate::cluster_state::ClusterState;
use crate::pool::Pool;

/// Shared, read-mostly state of a running proxy.
pub struct ProxyContext {
    pub config: Arc<Config>,
    /// Announced in the greeting; taken from the primary at start so drivers detect features.
    pub server_version: String,
    /// For caching_sha2_password full authentication without TLS.
    pub rsa: RsaKeyPair,
    next_connection_id: AtomicU32,
    /// Users who completed a caching_sha2_password full authentication since start: like a
    /// MySQL server, Lagless lets them use the fast path afterwards.
    sha2_cache: Mutex<HashSet<String>>,
    pub stats: Stats,
    /// Health, load and counters of the servers; the routing snapshot.
    pub cluster: ClusterState,
    /// The newest GTIDs any session committed through this proxy (for `global` reads).
    global_gtids: Mutex<MariaPos>,
    /// Backend connections shared between sessions.
    pub pool: Arc<Pool>,
    /// Failovers, switchovers, rejoins and quarantines done by this proxy.
    pub ha: crate::ha_history::HaHistory,
    /// Client sessions per worker runtime (pool shard); one entry, all sessions, with the
    /// multi-threaded runtime.
    pub worker_sessions: Box<[AtomicUsize]>,
    /// The character sets each `SET NAMES` statement set on a primary (see
    /// `engine::set_names`), by primary and statement text.
    set_names: Mutex<SetNamesResults>,
}

/// Distinct `SET NAMES` statements remembered per primary (applications use one or two).
const SET_NAMES_KEPT: usize = 64;

type SetNamesResults =
    HashMap<lagless_routing::ServerRef, HashMap<String, Arc<[(String, String)]>>>;

/// Counters visible to tests and, later, to the admin interface.
#[derive(Default)]
pub struct Stats {
    pub connections_accepted: AtomicU64,
    pub connections_active: AtomicU64,
    pub auth_failures: AtomicU64,
    pub commands: AtomicU64,
    pub backend_errors: AtomicU64,
    /// Statements the classifier did not understand (sent to the primary).
    pub unknown_statements: AtomicU64,
    /// `SET NAMES` statements answered by Lagless without a server (see `engine::set_names`).
    pub set_names_answered: AtomicU64,
    /// Optimistic transactions moved to the primary, their replay matching what the client saw.
    pub optimistic_moved: AtomicU64,
    /// Optimistic transactions rolled back because a replayed read differed on the primary.
    pub optimistic_differed: AtomicU64,
    /// Optimistic transactions rolled back because they could not be replayed (too large).
    pub optimistic_unreplayable: AtomicU64,
    /// Transactions whose primary connection was lost, replayed and gone on
    /// (`[failover] transaction_replay`).
    pub transactions_resumed: AtomicU64,
    /// Such transactions that could not go on (rolled back, the client told to retry).
    pub transactions_not_resumed: AtomicU64,
    /// Routing hints that could not be followed (inside a transaction, a write to a replica).
    pub hints_ignored: AtomicU64,
    /// Reads retried on another server after a replica failed before answering.
    pub read_retries: AtomicU64,
    /// Reads sent to the primary because the replica had not applied the session's last write.
    pub reads_behind: AtomicU64,
    /// Reads run again on the primary after their replica answered "no such table" (or
    /// database, column, function): a schema change it had not applied yet.
    pub reads_schema_behind: AtomicU64,
}

impl ProxyContext {
    /// # Errors
    /// When the RSA key for caching_sha2_password cannot be generated.
    pub fn new(
        config: Arc<Config>,
        server_version: String,
    ) -> Result<Self, lagless_protocol::ProtocolError> {
        Self::with_shards(config, server_version, 1)
    }

    /// A context whose backend pool has one shard per worker runtime (see `crate::pool`).
    ///
    /// # Errors
    /// When the RSA key for caching_sha2_password cannot be generated.
    pub fn with_shards(
        config: Arc<Config>,
        server_version: String,
        shards: usize,
    ) -> Result<Self, lagless_protocol::ProtocolError> {
        let cluster = ClusterState::new(&config, tokio::time::Instant::now());
        let pool = Arc::new(Pool::new(&config, shards));
        Ok(ProxyContext {
            worker_sessions: (0..shards.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            pool,
            ha: crate::ha_history::HaHistory::default(),
            config,
            server_version,
            rsa: RsaKeyPair::generate()?,
            next_connection_id: AtomicU32::new(1),
            sha2_cache: Mutex::new(HashSet::new()),
            stats: Stats::default(),
            cluster,
            global_gtids: Mutex::new(MariaPos::default()),
            set_names: Mutex::new(HashMap::new()),
        })
    }

    /// The variables `statement` (a `SET NAMES`) set when `primary` ran it, if it did.
    pub fn set_names_result(
        &self,
        primary: lagless_routing::ServerRef,
        statement: &str,
    ) -> Option<Arc<[(String, String)]>> {
        let known = self.set_names.lock().ok()?;
        known.get(&primary)?.get(statement).cloned()
    }

    /// Remembers what `statement` (a `SET NAMES`) set on `primary`.
    pub fn remember_set_names(
        &self,
        primary: lagless_routing::ServerRef,
        statement: &str,
        vars: Vec<(String, String)>,
    ) {
        if let Ok(mut known) = self.set_names.lock() {
            let on = known.entry(primary).or_default();
            if on.len() < SET_NAMES_KEPT && !on.contains_key(statement) {
                on.insert(statement.to_string(), vars.into());
            }
        }
    }

    /// The proxy's clock for routing decisions: milliseconds since start.
    pub fn now_ms(&self) -> u64 {
        self.cluster.now_ms()
    }

    /// Records a write's GTID for `global` reads.
    pub fn committed(&self, gtid: &lagless_routing::gtid::MariaGtid) {
        if let Ok(mut g) = self.global_gtids.lock() {
            g.insert(*gtid);
        }
    }

    /// The newest GTIDs committed through the proxy.
    pub fn global_gtids(&self) -> MariaPos {
        self.global_gtids
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    pub fn next_connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn sha2_cached(&self, user: &str) -> bool {
        self.sha2_cache
            .lock()
            .map(|c| c.contains(user))
            .unwrap_or(false)
    }

    pub fn sha2_remember(&self, user: &str) {
        if let Ok(mut c) = self.sha2_cache.lock() {
            c.insert(user.to_string());
        }
    }
}
