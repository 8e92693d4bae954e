//! Transactions replayed elsewhere, their statements kept with a digest of each result:
//! - Optimistic transactions (`[routing] optimistic_transactions`, MaxScale's `optimistic_trx`):
//!   a read-write transaction starts on a replica, as most such transactions only read (a
//!   BEGIN, or with autocommit off the read that opens one). At the first statement a replica
//!   cannot run, it moves: rolled back on the replica, begun on the primary, its statements
//!   replayed there and each result checked against what the client already saw.
//! - Transaction replay (`[failover] transaction_replay`, MaxScale's `transaction_replay`): a
//!   transaction whose connection was lost (a dead primary, a killed connection) is replayed
//!   the same way on the primary, a new one after a failover, and goes on.
//!
//! If a result differs (the primary has other data than the client saw), the transaction
//! cannot go on as the client saw it: it is rolled back and the client gets ER_LOCK_DEADLOCK,
//! which applications retry, as after a server's own deadlock.

use std::sync::atomic::Ordering;

use lagless_protocol::consts::{self, Command};
use lagless_protocol::packet::encode_packet;
use lagless_protocol::response::Expect;
use lagless_routing::{RoutePlan, ServerRef};
use lagless_sql::{Classification, StatementClass, TransactionKind};
use tokio::io::AsyncWriteExt;

use super::prepared::Prepared;
use super::{prepared_execute, Attempt, Engine, Outgoing};
use crate::error::{err_packet, SessionError};
use crate::relay::{command, digest_reply, Relayed};

/// Most statement bytes a transaction keeps: past it, it can still end where it runs but can
/// no longer be replayed (sysbench's oltp_read_only sends about 1.5 KiB).
const MAX_KEPT_BYTES: usize = 4 << 20;
const MAX_KEPT_STATEMENTS: usize = 10_000;

/// What a transaction ran, to replay it on the primary.
pub(super) struct TrxLog {
    /// The BEGIN's COM_QUERY payload; none when, with autocommit off, the first statement
    /// opened the transaction.
    begin: Option<Vec<u8>>,
    statements: Vec<Kept>,
    bytes: usize,
    /// Why the transaction can no longer be replayed, if it cannot.
    unreplayable: Option<&'static str>,
    /// The session's tracked state (variables, schema) when the transaction started: the
    /// replay runs with the state of now, right only if it did not change since.
    state_version: u64,
}

struct Kept {
    command: Replay,
    /// The result the client saw (see `crate::relay::ResultDigest`).
    digest: u64,
}

enum Replay {
    /// A COM_QUERY payload.
    Query(Vec<u8>),
    /// A COM_STMT_EXECUTE of a client statement id, as the client sent it, with the statement
    /// as it was then: a client may close a statement in the middle of a transaction (a driver
    /// that prepares, executes and closes each query), and the replay needs it.
    Execute(u32, Box<Prepared>, Vec<u8>),
}

impl TrxLog {
    fn new(begin: Option<Vec<u8>>, state_version: u64) -> Self {
        TrxLog {
            begin,
            statements: Vec::new(),
            bytes: 0,
            unreplayable: None,
            state_version,
        }
    }

    fn keep(&mut self, command: Replay, digest: u64) {
        let len = match &command {
            Replay::Query(p) | Replay::Execute(_, _, p) => p.len(),
        };
        self.bytes += len;
        if self.bytes > MAX_KEPT_BYTES || self.statements.len() >= MAX_KEPT_STATEMENTS {
            self.unreplayable = Some("too large to replay on the primary");
            self.statements = Vec::new();
        }
        if self.unreplayable.is_none() {
            self.statements.push(Kept { command, digest });
        }
    }
}

/// A statement sent whose answer was lost with its connection: may it run again in the replayed
/// transaction? Only if it cannot have committed anything: a read, or one INSERT, UPDATE,
/// DELETE or REPLACE (the transaction it ran in was rolled back with the connection). Not a
/// COMMIT, DDL (which commits implicitly), or anything else.
pub(super) fn redo_is_safe(c: &Classification<'_>) -> bool {
    match c.class {
        StatementClass::Read
        | StatementClass::ReadPrimaryOnly
        | StatementClass::LockingRead
        | StatementClass::Meta(_)
        | StatementClass::Empty => true,
        StatementClass::Write if !c.multi => c.first_keyword.is_some_and(|k| {
            ["insert", "update", "delete", "replace"]
                .iter()
                .any(|dml| k.eq_ignore_ascii_case(dml))
        }),
        _ => false,
    }
}

/// Why a move failed.
enum MoveFailure {
    /// A result differs on the primary.
    Differs,
    /// The transaction could not be replayed (too large, long data, a cursor).
    Unreplayable(&'static str),
    /// The primary could not run the replay.
    Primary(String),
}

impl Engine {
    /// Whether the statements of the session's open transaction are kept: an optimistic
    /// transaction, or any with `[failover] transaction_replay`.
    pub(super) fn keeps_transaction(&self) -> bool {
        let trx = &self.routing.trx;
        trx.optimistic || (trx.active && self.config.failover.transaction_replay)
    }

    /// After a statement ran: if it ran in a transaction whose statements are kept, keep it
    /// (a BEGIN starts a new log). A transaction that ended forgets its log.
    pub(super) fn note_transaction(
        &mut self,
        c: &Classification<'_>,
        plan: &RoutePlan,
        out: &Outgoing<'_>,
        relayed: &Relayed,
    ) {
        if !self.keeps_transaction() {
            self.trx_log = None;
            return;
        }
        // Only client statements (COM_QUERY, COM_STMT_EXECUTE) on the transaction's server.
        if self.routing.trx.server != Some(plan.server) {
            return;
        }
        let command = match out {
            Outgoing::Packet(p) if p.payload.first() == Some(&(Command::Query as u8)) => {
                Replay::Query(p.payload.to_vec())
            }
            Outgoing::Packet(_) => return,
            Outgoing::Execute(id, payload) => match self.stmts.map.get(id) {
                Some(stmt) if !super::prepared::opens_cursor(payload) => {
                    Replay::Execute(*id, Box::new(stmt.clone()), payload.to_vec())
                }
                Some(_) => return self.trx_unreplayable("a statement with a cursor ran in it"),
                None => return self.trx_unreplayable("a statement was closed as it ran"),
            },
        };
        let begins = matches!(
            c.class,
            StatementClass::Transaction(TransactionKind::Begin { .. })
        );
        match (&mut self.trx_log, command) {
            (_, Replay::Query(begin)) if begins => {
                self.trx_log = Some(TrxLog::new(Some(begin), self.tracked.version));
            }
            (Some(log), command) => log.keep(command, relayed.digest),
            (None, command) => {
                // Autocommit off: this statement opened the transaction; on the primary, whose
                // connection has autocommit off too, its replay opens it again. With autocommit
                // on, a transaction whose BEGIN was not kept cannot be replayed: its statements
                // would each commit.
                let mut log = TrxLog::new(None, self.tracked.version);
                if self.routing.trx.autocommit {
                    log.unreplayable = Some("its start was not kept");
                }
                log.keep(command, relayed.digest);
                self.trx_log = Some(log);
            }
        }
    }

    /// What is about to run in the transaction cannot be replayed later (long data sent
    /// apart): the transaction may still end where it runs, but not move.
    pub(super) fn trx_unreplayable(&mut self, why: &'static str) {
        if let Some(log) = self.trx_log.as_mut() {
            log.unreplayable = Some(why);
        }
    }

    /// Moves the optimistic transaction open on `from` to the primary `to` (see the module
    /// doc). True: moved, the statement runs on the primary next. False: the transaction was
    /// rolled back and the client got ER_LOCK_DEADLOCK (with sequence id `reply_seq`).
    ///
    /// # Errors
    /// Client I/O.
    pub(super) async fn move_optimistic(
        &mut self,
        from: ServerRef,
        to: ServerRef,
        reply_seq: u8,
    ) -> Result<bool, SessionError> {
        let log = self.trx_log.take();
        if let Some(conn) = self.backends.existing(from) {
            if command(conn, b"\x03ROLLBACK", Expect::Query).await.is_err() {
                self.backends.drop_conn(from);
            }
        }
        let outcome = self.replay_checked(log.as_ref(), to).await;
        if outcome.is_ok() {
            // The transaction goes on on the primary: what it ran stays part of it.
            self.trx_log = log;
        }
        let stats = &self.ctx.stats;
        match &outcome {
            Ok(_) => &stats.optimistic_moved,
            Err(MoveFailure::Differs) => &stats.optimistic_differed,
            Err(MoveFailure::Unreplayable(_)) => &stats.optimistic_unreplayable,
            Err(MoveFailure::Primary(_)) => &stats.backend_errors,
        }
        .fetch_add(1, Ordering::Relaxed);
        if matches!(
            outcome,
            Err(MoveFailure::Differs | MoveFailure::Unreplayable(_))
        ) {
            // It would fail the same way again (a read that differs by nature, a transaction
            // too large): the retry starts on the primary.
            self.routing.trx.no_optimistic_next = true;
        }
        self.conclude_move(outcome, to, reply_seq, "move to the primary")
            .await
    }

    /// `[failover] transaction_replay`: the connection of the session's transaction on the
    /// primary `lost` was lost, and the client saw none of the answer. The transaction is
    /// replayed on the primary (a new connection to the same server, or the new primary once
    /// a failover names one) and checked. Some(primary): it goes on there, the statement runs
    /// there next. None: it was rolled back and the client got ER_LOCK_DEADLOCK.
    ///
    /// # Errors
    /// Client I/O.
    pub(super) async fn resume_transaction(
        &mut self,
        lost: ServerRef,
        reply_seq: u8,
    ) -> Result<Option<ServerRef>, SessionError> {
        let mut log = self.trx_log.take();
        if self.conn_state || self.routing.pins.any() || self.stmts.cursor_opened {
            // User variables, temporary tables, locks, a cursor: gone with the connection,
            // and the replayed statements would run without them.
            if let Some(log) = log.as_mut() {
                log.unreplayable = Some("it used state that lived on the lost connection");
            }
        }
        let mut to = self.primary_plan().server;
        let mut outcome = self.replay_checked(log.as_ref(), to).await;
        if matches!(outcome, Err(MoveFailure::Primary(_)))
            && to == lost
            && self.config.failover.enabled
            && self.wait_for_new_primary(lost).await
        {
            to = self.primary_plan().server;
            outcome = self.replay_checked(log.as_ref(), to).await;
        }
        if outcome.is_ok() {
            self.trx_log = log;
        }
        let counter = if outcome.is_ok() {
            &self.ctx.stats.transactions_resumed
        } else {
            &self.ctx.stats.transactions_not_resumed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let resumed = self
            .conclude_move(outcome, to, reply_seq, "resume on the primary")
            .await?;
        Ok(resumed.then_some(to))
    }

    /// The replay of `log` on `to`, bounded like any statement there: a primary that hangs is
    /// failed over without answering (as in `attempt`).
    async fn replay_checked(
        &mut self,
        log: Option<&TrxLog>,
        to: ServerRef,
    ) -> Result<u16, MoveFailure> {
        let log = log.ok_or(MoveFailure::Unreplayable("its statements were not kept"))?;
        if let Some(why) = log.unreplayable {
            return Err(MoveFailure::Unreplayable(why));
        }
        if log.state_version != self.tracked.version {
            // Statements before the change would replay with the variables or schema of after.
            return Err(MoveFailure::Unreplayable(
                "session variables or the schema changed during the transaction",
            ));
        }
        let ctx = self.ctx.clone();
        // Its own slot: the replay borrows the whole session (a rare path: one lock more).
        let watch = ctx.cluster.watch_demotions();
        match ctx
            .cluster
            .until_demoted(to, &watch, self.replay(log, to))
            .await
        {
            Some(outcome) => outcome,
            None => {
                self.backends.drop_conn(to);
                Err(MoveFailure::Primary("demoted during the replay".into()))
            }
        }
    }

    /// After a replay on `to`: the transaction goes on there (true), or it is rolled back
    /// there, no transaction is left, and the client is told with ER_LOCK_DEADLOCK (false).
    async fn conclude_move(
        &mut self,
        outcome: Result<u16, MoveFailure>,
        to: ServerRef,
        reply_seq: u8,
        what: &str,
    ) -> Result<bool, SessionError> {
        let why = match outcome {
            Ok(status) => {
                self.routing.observe_status(Some(status), to);
                return Ok(true);
            }
            Err(MoveFailure::Differs) => {
                "a statement gives another result than the client saw".to_string()
            }
            Err(MoveFailure::Unreplayable(why)) => why.to_string(),
            Err(MoveFailure::Primary(e)) => format!("the primary failed: {e}"),
        };
        if let Some(conn) = self.backends.existing(to) {
            if command(conn, b"\x03ROLLBACK", Expect::Query).await.is_err() {
                self.backends.drop_conn(to);
            }
        }
        let status = self.autocommit_status();
        self.routing.observe_status(Some(status), to);
        let message = format!(
            "Deadlock found when trying to get lock; try restarting transaction \
             (Lagless: the transaction could not {what}: {why})"
        );
        self.client
            .queue_err(reply_seq, &err_packet(consts::ER_LOCK_DEADLOCK, &message));
        self.client.flush().await?;
        Ok(false)
    }

    /// Begins the transaction on the primary and replays it, checking each result. Returns
    /// the status flags of the last answer.
    async fn replay(&mut self, log: &TrxLog, to: ServerRef) -> Result<u16, MoveFailure> {
        let Engine {
            backends,
            config,
            tracked,
            stmts,
            ctx,
            ..
        } = self;
        let lost = |e: SessionError| MoveFailure::Primary(e.to_string());
        let conn = backends.get(config, to).await.map_err(lost)?;
        let primary_now = ctx.cluster.is_primary(to);
        if conn.is_primary != primary_now {
            conn.is_primary = primary_now;
            conn.synced_version = u64::MAX;
        }
        let result: Result<u16, MoveFailure> = async {
            tracked.sync(conn).await.map_err(lost)?;
            let mut status = consts::SERVER_STATUS_IN_TRANS;
            if let Some(begin) = &log.begin {
                let begun = command(conn, begin, Expect::Query).await.map_err(lost)?;
                if let Some(err) = begun.error {
                    return Err(MoveFailure::Primary(err.message));
                }
                status = begun.status.unwrap_or(status);
            }
            let mut framed = bytes::BytesMut::new();
            for kept in &log.statements {
                framed.clear();
                match &kept.command {
                    Replay::Query(payload) => {
                        encode_packet(0, payload, &mut framed);
                    }
                    Replay::Execute(id, stmt, payload) => {
                        // The statement as it was, under its id, for this execution only.
                        let now = stmts.map.insert(*id, (**stmt).clone());
                        // On the primary: no error is diverted.
                        let executed = prepared_execute(stmts, *id, payload, conn, false).await;
                        match now {
                            Some(now) => stmts.map.insert(*id, now),
                            None => stmts.map.remove(id),
                        };
                        executed.map_err(|a| match a {
                            Attempt::ServerError(e) => MoveFailure::Primary(e.message),
                            Attempt::Retryable(e) | Attempt::NoAnswer(e) | Attempt::Fatal(e) => {
                                lost(e)
                            }
                            Attempt::Behind | Attempt::SchemaBehind(_) => MoveFailure::Differs,
                        })?;
                        encode_packet(0, &stmts.exec_buf, &mut framed);
                    }
                }
                conn.clean = false;
                conn.stream
                    .write_all(&framed)
                    .await
                    .map_err(|e| MoveFailure::Primary(e.to_string()))?;
                let (digest, answered) = digest_reply(conn, Expect::Query).await.map_err(lost)?;
                conn.clean = true;
                if digest != kept.digest {
                    return Err(MoveFailure::Differs);
                }
                status = answered.unwrap_or(status);
            }
            tracked.mark_synced(conn);
            Ok(status)
        }
        .await;
        if matches!(result, Err(MoveFailure::Primary(_))) && !conn.clean {
            backends.drop_conn(to);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> TrxLog {
        TrxLog::new(Some(b"\x03BEGIN".to_vec()), 0)
    }

    #[test]
    fn a_log_past_its_bounds_gives_up_replaying_and_its_memory() {
        let mut l = log();
        l.keep(Replay::Query(vec![b'x'; 1000]), 1);
        assert_eq!((l.statements.len(), l.unreplayable), (1, None));
        l.keep(Replay::Query(vec![b'x'; MAX_KEPT_BYTES]), 2);
        assert!(l.unreplayable.is_some());
        assert!(l.statements.is_empty() && l.statements.capacity() == 0);
        l.keep(Replay::Query(b"\x03SELECT 1".to_vec()), 3);
        assert!(l.statements.is_empty(), "nothing kept once it gave up");

        let mut l = log();
        for i in 0..MAX_KEPT_STATEMENTS {
            l.keep(Replay::Query(vec![0; 10]), i as u64);
        }
        assert_eq!(l.statements.len(), MAX_KEPT_STATEMENTS);
        l.keep(Replay::Query(vec![0; 10]), 0);
        assert!(l.unreplayable.is_some() && l.statements.is_empty());
    }
}

#[cfg(test)]
mod redo_tests {
    use super::redo_is_safe;
    use lagless_sql::{classify, LexOptions};

    #[test]
    fn only_what_cannot_have_committed_is_redone_after_a_lost_answer() {
        for (sql, safe) in [
            ("SELECT * FROM t", true),
            ("SELECT * FROM t FOR UPDATE", true),
            ("insert into t values (1)", true),
            ("UPDATE t SET a = 1", true),
            ("DELETE FROM t", true),
            ("REPLACE INTO t VALUES (1)", true),
            ("COMMIT", false),
            ("ROLLBACK", false),
            ("CREATE TABLE x (a INT)", false),
            ("TRUNCATE t", false),
            ("SET autocommit = 1", false),
            ("INSERT INTO t VALUES (1); COMMIT", false),
            ("CALL p()", false),
        ] {
            let c = classify(sql, &LexOptions::default());
            assert_eq!(redo_is_safe(&c), safe, "{sql}");
        }
    }
}
