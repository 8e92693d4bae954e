//! Optimistic transactions (`[routing] optimistic_transactions`, MaxScale's `optimistic_trx`):
//! a read-write transaction starts on a replica, as most such transactions only read (a BEGIN,
//! or with autocommit off the read that opens one). Each of
//! its statements is kept with a digest of its result. At the first statement a replica cannot
//! run, the transaction moves: rolled back on the replica, begun on the primary, its statements
//! replayed there and each result checked against what the client already saw. If one differs
//! (the primary has newer data than the replica showed), the transaction cannot go on as the
//! client saw it: it is rolled back and the client gets ER_LOCK_DEADLOCK, which applications
//! retry, as after a server's own deadlock.

use std::sync::atomic::Ordering;

use lagless_protocol::consts;
use lagless_protocol::packet::encode_packet;
use lagless_protocol::response::Expect;
use lagless_routing::{Reason, RoutePlan, ServerRef};
use lagless_sql::{Classification, StatementClass, TransactionKind};
use tokio::io::AsyncWriteExt;

use super::prepared::Prepared;
use super::{prepared_execute, Attempt, Engine, Outgoing};
use crate::error::{err_packet, SessionError};
use crate::relay::{command, digest_reply, Relayed};

/// Most statement bytes an optimistic transaction keeps: past it, it can still end on its
/// replica but can no longer move (sysbench's oltp_read_only sends about 1.5 KiB).
const MAX_KEPT_BYTES: usize = 4 << 20;
const MAX_KEPT_STATEMENTS: usize = 10_000;

/// What an optimistic transaction ran, to replay it on the primary.
pub(super) struct OptimisticLog {
    /// The BEGIN's COM_QUERY payload; none when, with autocommit off, the first statement
    /// opened the transaction.
    begin: Option<Vec<u8>>,
    statements: Vec<Kept>,
    bytes: usize,
    /// Why the transaction can no longer be replayed, if it cannot.
    unreplayable: Option<&'static str>,
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

impl OptimisticLog {
    fn new(begin: Option<Vec<u8>>) -> Self {
        OptimisticLog {
            begin,
            statements: Vec::new(),
            bytes: 0,
            unreplayable: None,
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
    /// After a statement of an optimistic transaction ran on its replica: keep it (the BEGIN
    /// starts a new log). A transaction that ended forgets its log.
    pub(super) fn note_optimistic(
        &mut self,
        c: &Classification<'_>,
        plan: &RoutePlan,
        out: &Outgoing<'_>,
        relayed: &Relayed,
    ) {
        if !self.routing.trx.optimistic {
            self.optimistic = None;
            return;
        }
        if plan.reason != Reason::OptimisticTransaction {
            return;
        }
        let command = match out {
            Outgoing::Packet(p) => Replay::Query(p.payload.to_vec()),
            Outgoing::Execute(id, payload) => match self.stmts.map.get(id) {
                Some(stmt) => Replay::Execute(*id, Box::new(stmt.clone()), payload.to_vec()),
                None => return self.optimistic_unreplayable("a statement was closed as it ran"),
            },
        };
        let begins = matches!(
            c.class,
            StatementClass::Transaction(TransactionKind::Begin { .. })
        );
        match (&mut self.optimistic, command) {
            (_, Replay::Query(begin)) if begins => {
                self.optimistic = Some(OptimisticLog::new(Some(begin)));
            }
            (Some(log), command) => log.keep(command, relayed.digest),
            (None, command) => {
                // Autocommit off: this read opened the transaction; on the primary, whose
                // connection has autocommit off too, its replay opens it again.
                let mut log = OptimisticLog::new(None);
                log.keep(command, relayed.digest);
                self.optimistic = Some(log);
            }
        }
    }

    /// What is about to run in the optimistic transaction cannot be replayed later (long data
    /// sent apart, a cursor): the transaction may still end on its replica, but not move.
    pub(super) fn optimistic_unreplayable(&mut self, why: &'static str) {
        if let Some(log) = self.optimistic.as_mut() {
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
        let log = self.optimistic.take();
        if let Some(conn) = self.backends.existing(from) {
            if command(conn, b"\x03ROLLBACK", Expect::Query).await.is_err() {
                self.backends.drop_conn(from);
            }
        }
        let outcome = match &log {
            Some(log) => match log.unreplayable {
                // A primary that hangs is failed over without answering (as in `attempt`).
                None => {
                    let ctx = self.ctx.clone();
                    ctx.cluster
                        .until_demoted(to, self.replay(log, to))
                        .await
                        .unwrap_or_else(|| {
                            self.backends.drop_conn(to);
                            Err(MoveFailure::Primary("demoted during the replay".into()))
                        })
                }
                Some(why) => Err(MoveFailure::Unreplayable(why)),
            },
            None => Err(MoveFailure::Unreplayable("its statements were not kept")),
        };
        let stats = &self.ctx.stats;
        let why = match outcome {
            Ok(status) => {
                self.routing.observe_status(Some(status), to);
                stats.optimistic_moved.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            Err(MoveFailure::Differs) => {
                stats.optimistic_differed.fetch_add(1, Ordering::Relaxed);
                // A read that differs by nature (NOW(), RAND(), @@server_id) would differ
                // again: the retry starts on the primary.
                self.routing.trx.no_optimistic_next = true;
                "a read on the replica gives another result on the primary".to_string()
            }
            Err(MoveFailure::Unreplayable(why)) => {
                stats
                    .optimistic_unreplayable
                    .fetch_add(1, Ordering::Relaxed);
                self.routing.trx.no_optimistic_next = true;
                why.to_string()
            }
            Err(MoveFailure::Primary(e)) => {
                stats.backend_errors.fetch_add(1, Ordering::Relaxed);
                format!("the primary failed: {e}")
            }
        };
        let message = format!(
            "Deadlock found when trying to get lock; try restarting transaction \
             (Lagless: the optimistic transaction could not move to the primary: {why})"
        );
        self.fail_move(to, reply_seq, &message).await?;
        Ok(false)
    }

    /// Ends a failed move: rolled back on the primary, no transaction left, the client told.
    async fn fail_move(
        &mut self,
        to: ServerRef,
        reply_seq: u8,
        message: &str,
    ) -> Result<(), SessionError> {
        if let Some(conn) = self.backends.existing(to) {
            if command(conn, b"\x03ROLLBACK", Expect::Query).await.is_err() {
                self.backends.drop_conn(to);
            }
        }
        let status = self.autocommit_status();
        self.routing.observe_status(Some(status), to);
        self.client
            .queue_err(reply_seq, &err_packet(consts::ER_LOCK_DEADLOCK, message));
        self.client.flush().await
    }

    /// Begins the transaction on the primary and replays it, checking each result. Returns
    /// the status flags of the last answer.
    async fn replay(&mut self, log: &OptimisticLog, to: ServerRef) -> Result<u16, MoveFailure> {
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
                        let executed = prepared_execute(stmts, *id, payload, conn).await;
                        match now {
                            Some(now) => stmts.map.insert(*id, now),
                            None => stmts.map.remove(id),
                        };
                        executed.map_err(|a| match a {
                            Attempt::ServerError(e) => MoveFailure::Primary(e.message),
                            Attempt::Retryable(e) | Attempt::NoAnswer(e) | Attempt::Fatal(e) => {
                                lost(e)
                            }
                            Attempt::Behind => MoveFailure::Differs,
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

    fn log() -> OptimisticLog {
        OptimisticLog::new(Some(b"\x03BEGIN".to_vec()))
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
