//! The prepared statements of one backend connection, shared by every session that uses it.
//!
//! With multiplexing a session's prepared statements must not pin its connections: a client
//! statement id lives in the session (`engine::prepared`), and each backend connection keeps
//! the statements prepared on it, found again by their text and the context they were prepared
//! in. The next session that executes the same text in the same context on this connection
//! reuses the server's statement instead of preparing it again.
//!
//! The context is the connection's schema and session variables at prepare time: the server
//! runs a prepared statement in the schema it was prepared in, and variables such as
//! `sql_mode` change how its text was parsed, so a statement prepared under another schema or
//! other variables is a different statement.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Statements kept per connection. The server's own limit is `max_prepared_stmt_count`
/// (16,382 by default) for all connections together: 128 per connection leaves room for
/// 64 pooled connections per server per proxy and for other clients.
pub const MAX_PER_CONNECTION: usize = 128;

/// A statement's identity on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StmtKey {
    pub context: u64,
    pub sql: Arc<str>,
}

/// A statement prepared on the connection.
#[derive(Debug, Clone)]
pub struct CachedStmt {
    /// The server's statement id.
    pub id: u32,
    /// The parameter types last sent with an execution on this connection (2 bytes each):
    /// an execution without types uses those, whichever session sent them.
    pub bound: Option<Vec<u8>>,
    last_used: u64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct StmtCache {
    entries: HashMap<StmtKey, CachedStmt>,
    clock: u64,
}

impl StmtCache {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The statement, marked as just used.
    pub fn get_mut(&mut self, key: &StmtKey) -> Option<&mut CachedStmt> {
        self.clock += 1;
        let clock = self.clock;
        let s = self.entries.get_mut(key)?;
        s.last_used = clock;
        Some(s)
    }

    /// Records a statement the server just prepared as `id`. Returns the server ids to close
    /// (`COM_STMT_CLOSE`, no response): the statement this one replaces, and the least
    /// recently used ones when the cache is full.
    pub fn insert(&mut self, key: StmtKey, id: u32) -> Vec<u32> {
        self.clock += 1;
        let mut closed = Vec::new();
        let entry = CachedStmt {
            id,
            bound: None,
            last_used: self.clock,
        };
        if let Some(old) = self.entries.insert(key, entry) {
            closed.push(old.id);
        }
        while self.entries.len() > MAX_PER_CONNECTION {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            let Some(k) = oldest else { break };
            if let Some(s) = self.entries.remove(&k) {
                closed.push(s.id);
            }
        }
        closed
    }

    /// Forgets a statement (its preparation failed, or the server no longer has it).
    pub fn remove(&mut self, key: &StmtKey) -> Option<u32> {
        self.entries.remove(key).map(|s| s.id)
    }
}

/// The context of a statement prepared on a connection in `schema` with `vars` set.
pub fn context_of(schema: Option<&str>, vars: &[(String, String)]) -> u64 {
    let mut h = DefaultHasher::new();
    schema.hash(&mut h);
    vars.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(context: u64, sql: &str) -> StmtKey {
        StmtKey {
            context,
            sql: Arc::from(sql),
        }
    }

    #[test]
    fn found_by_text_and_context_only() {
        let mut c = StmtCache::default();
        assert!(c.insert(key(1, "SELECT ?"), 7).is_empty());
        assert_eq!(c.get_mut(&key(1, "SELECT ?")).map(|s| s.id), Some(7));
        assert!(
            c.get_mut(&key(2, "SELECT ?")).is_none(),
            "other schema or variables"
        );
        assert!(c.get_mut(&key(1, "SELECT ? ")).is_none());
        // Prepared again in the same context: the old server statement is to be closed.
        assert_eq!(c.insert(key(1, "SELECT ?"), 8), vec![7]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.remove(&key(1, "SELECT ?")), Some(8));
        assert!(c.is_empty());
    }

    #[test]
    fn full_cache_closes_the_least_recently_used() {
        let mut c = StmtCache::default();
        for i in 0..MAX_PER_CONNECTION {
            assert!(c
                .insert(key(0, &format!("SELECT {i}")), i as u32)
                .is_empty());
        }
        // Statement 0 is used again: statement 1 is now the oldest.
        c.get_mut(&key(0, "SELECT 0")).unwrap();
        assert_eq!(c.insert(key(0, "SELECT new"), 999), vec![1]);
        assert_eq!(c.len(), MAX_PER_CONNECTION);
        assert!(c.get_mut(&key(0, "SELECT 0")).is_some());
        assert!(c.get_mut(&key(0, "SELECT 1")).is_none());
    }

    #[test]
    fn context_depends_on_schema_and_variables() {
        let vars = vec![("sql_mode".to_string(), "'ANSI_QUOTES'".to_string())];
        let a = context_of(Some("app"), &[]);
        assert_eq!(a, context_of(Some("app"), &[]));
        assert_ne!(a, context_of(Some("other"), &[]));
        assert_ne!(a, context_of(None, &[]));
        assert_ne!(a, context_of(Some("app"), &vars));
    }
}
