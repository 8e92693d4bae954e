//! What routing remembers about one client session, and how each statement's outcome updates
//! it. The transaction state is guessed from the SQL and then corrected from the server's own
//! status flags, which are the truth.

use lagless_sql::{Classification, SessionKind, StatementClass, TransactionKind, TxScope, XaKind};

use crate::consistency::{Consistency, WriteState};
use crate::gtid::{MariaGtid, MariaPos};
use crate::view::ServerRef;

const SERVER_STATUS_IN_TRANS: u16 = 0x0001;
const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
const SERVER_STATUS_IN_TRANS_READONLY: u16 = 0x2000;

/// The session's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrxState {
    /// A transaction is open (the server said IN_TRANS).
    pub active: bool,
    /// It is a READ ONLY transaction.
    pub read_only: bool,
    /// Where it runs: every statement of a transaction goes there.
    pub server: Option<ServerRef>,
    /// Session autocommit; when off, the next statement opens a transaction.
    pub autocommit: bool,
    /// `SET TRANSACTION ...` (next transaction only) ran on the primary: the next transaction
    /// must start there to get those characteristics.
    pub next_on_primary: bool,
    /// A read-write transaction running optimistically on a replica: its first statement a
    /// replica cannot run moves it to the primary (`[routing] optimistic_transactions`).
    pub optimistic: bool,
    /// An optimistic transaction could not be replayed on the primary: the next transaction
    /// starts there.
    pub no_optimistic_next: bool,
}

impl Default for TrxState {
    fn default() -> Self {
        TrxState {
            active: false,
            read_only: false,
            server: None,
            autocommit: true,
            next_on_primary: false,
            optimistic: false,
            no_optimistic_next: false,
        }
    }
}

/// Session state that lives on the primary connection only: while any is held, the session's
/// statements go to the primary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// Temporary tables created and not dropped (lower-case names).
    pub temp_tables: Vec<String>,
    /// LOCK TABLES held.
    pub table_locks: bool,
    /// GET_LOCK() called; released by RELEASE_ALL_LOCKS() or a session reset.
    pub named_locks: bool,
    /// An XA transaction is open.
    pub xa: bool,
    /// HANDLER ... OPEN used.
    pub handler: bool,
}

impl Pins {
    pub fn any(&self) -> bool {
        !self.temp_tables.is_empty()
            || self.table_locks
            || self.named_locks
            || self.xa
            || self.handler
    }

    /// Why the session is pinned, for explanations.
    pub fn describe(&self) -> Option<String> {
        if !self.temp_tables.is_empty() {
            return Some(format!("temporary table {}", self.temp_tables.join(", ")));
        }
        let kind = if self.table_locks {
            "LOCK TABLES held"
        } else if self.named_locks {
            "GET_LOCK() held"
        } else if self.xa {
            "XA transaction open"
        } else if self.handler {
            "HANDLER open"
        } else {
            return None;
        };
        Some(kind.to_string())
    }
}

/// Routing state of one client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRouting {
    /// The cluster this user's sessions use.
    pub cluster: usize,
    pub user: String,
    /// The current schema, for rules.
    pub schema: Option<String>,
    /// The user's configured route is "primary".
    pub primary_only: bool,
    pub trx: TrxState,
    pub pins: Pins,
    /// The replica this session reads from, per cluster (sticky).
    pub sticky: Vec<Option<ServerRef>>,
    /// Where the previous statement ran (SHOW WARNINGS goes there).
    pub last: Option<ServerRef>,
    /// How fresh this session's reads must be.
    pub consistency: Consistency,
    /// What the session wrote (and causal tokens it was given).
    pub write: WriteState,
    /// GTIDs each replica was seen to have applied (by a check on the session's connection).
    pub seen: Vec<(ServerRef, MariaPos)>,
}

impl SessionRouting {
    pub fn new(
        cluster: usize,
        clusters: usize,
        user: &str,
        schema: Option<String>,
        primary_only: bool,
    ) -> Self {
        SessionRouting {
            cluster,
            user: user.to_string(),
            schema,
            primary_only,
            trx: TrxState::default(),
            pins: Pins::default(),
            sticky: vec![None; clusters],
            last: None,
            consistency: Consistency::default(),
            write: WriteState::default(),
            seen: Vec::new(),
        }
    }

    /// A write committed with this GTID (from the OK packet's `last_gtid`) at `now_ms`.
    pub fn record_write(&mut self, gtid: &str, now_ms: u64) {
        if let Ok(g) = gtid.parse::<MariaGtid>() {
            self.write.gtids.insert(g);
            self.write.at_ms = Some(now_ms);
            // Its binlog position is learned again when a position mode needs it.
            self.write.binlog = None;
        }
    }

    /// Reads must also see these GTIDs (a causal token from another session).
    pub fn require(&mut self, gtids: &MariaPos) {
        self.write.gtids.merge_max(gtids);
    }

    /// What a check found `server` to have applied.
    pub fn saw(&mut self, server: ServerRef, gtids: &MariaPos) {
        match self.seen.iter_mut().find(|(r, _)| *r == server) {
            Some((_, g)) => g.merge_max(gtids),
            None => self.seen.push((server, gtids.clone())),
        }
    }

    pub fn seen_on(&self, server: ServerRef) -> Option<&MariaPos> {
        self.seen.iter().find(|(r, _)| *r == server).map(|(_, g)| g)
    }

    /// COM_RESET_CONNECTION / COM_CHANGE_USER: everything tied to the connection is gone.
    pub fn reset(&mut self) {
        self.trx = TrxState::default();
        self.pins = Pins::default();
        self.last = None;
        // The consistency mode and the write history are the client's, not the connection's:
        // they survive a reset, so a reset never makes reads staler.
    }

    /// Records the outcome of a statement that ran on `server`: `status` is the server status
    /// of its final OK/EOF (None for an error or no status), `ok` whether it succeeded.
    pub fn after(
        &mut self,
        c: &Classification<'_>,
        server: ServerRef,
        status: Option<u16>,
        ok: bool,
    ) {
        self.last = Some(server);
        if ok {
            if c.multi {
                for part in lagless_sql::statements(c.text, &Default::default()) {
                    self.apply_effects(&part);
                }
            } else {
                self.apply_effects(c);
            }
        }
        self.observe_status(status, server);
    }

    /// Like [`Self::after`], for a statement that ran as `plan` said; `on_primary` tells whether
    /// its server is a primary now (asked only for an optimistic plan). A statement planned as an optimistic transaction (a BEGIN,
    /// or a read with autocommit off) that opened a read-write transaction on a replica marks
    /// the transaction optimistic.
    pub fn after_plan(
        &mut self,
        c: &Classification<'_>,
        plan: &crate::decide::RoutePlan,
        on_primary: impl FnOnce() -> bool,
        status: Option<u16>,
        ok: bool,
    ) {
        let was_active = self.trx.active;
        self.after(c, plan.server, status, ok);
        if self.trx.active && !was_active {
            // The transaction after a failed optimistic one started (on the primary).
            self.trx.no_optimistic_next = false;
        }
        if plan.reason == crate::decide::Reason::OptimisticTransaction
            && self.trx.active
            && !self.trx.read_only
            && self.trx.server == Some(plan.server)
            && !on_primary()
        {
            self.trx.optimistic = true;
        }
    }

    /// Corrects the transaction state from the server's status flags.
    pub fn observe_status(&mut self, status: Option<u16>, server: ServerRef) {
        let Some(s) = status else { return };
        self.trx.autocommit = s & SERVER_STATUS_AUTOCOMMIT != 0;
        if s & SERVER_STATUS_IN_TRANS != 0 {
            // A new transaction, or one that started elsewhere after the old one was ended.
            if !self.trx.active || self.trx.server != Some(server) {
                self.trx.server = Some(server);
                self.trx.next_on_primary = false;
                self.trx.optimistic = false;
            }
            self.trx.active = true;
            self.trx.read_only = s & SERVER_STATUS_IN_TRANS_READONLY != 0;
        } else {
            self.trx.active = false;
            self.trx.read_only = false;
            self.trx.server = None;
            self.trx.optimistic = false;
        }
    }

    fn apply_effects(&mut self, c: &Classification<'_>) {
        match c.class {
            StatementClass::SessionState(kind) => match kind {
                SessionKind::CreateTemporaryTable => {
                    if let Some(t) = c.tables().next() {
                        let name = t.name.to_ascii_lowercase();
                        if !self.pins.temp_tables.contains(&name) {
                            self.pins.temp_tables.push(name);
                        }
                    }
                }
                SessionKind::DropTemporaryTable => {
                    let dropped: Vec<String> =
                        c.tables().map(|t| t.name.to_ascii_lowercase()).collect();
                    self.pins.temp_tables.retain(|t| !dropped.contains(t));
                }
                SessionKind::LockTables => self.pins.table_locks = true,
                SessionKind::UnlockTables => self.pins.table_locks = false,
                SessionKind::Handler => self.pins.handler = true,
                SessionKind::Use(db) => self.schema = Some(db.to_string()),
                _ => {}
            },
            StatementClass::Transaction(kind) => match kind {
                // Starting a transaction releases table locks.
                TransactionKind::Begin { .. } => self.pins.table_locks = false,
                TransactionKind::Xa(XaKind::Start) => self.pins.xa = true,
                TransactionKind::Xa(XaKind::Commit | XaKind::Rollback) => self.pins.xa = false,
                TransactionKind::SetTransaction {
                    scope: TxScope::Next,
                    ..
                } => self.trx.next_on_primary = true,
                TransactionKind::SetAutocommit(on) => self.trx.autocommit = on,
                _ => {}
            },
            _ => {}
        }
        if c.releases_all_named_locks {
            self.pins.named_locks = false;
        } else if c.takes_named_lock {
            self.pins.named_locks = true;
        }
    }
}
