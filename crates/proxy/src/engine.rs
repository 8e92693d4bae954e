//! One client command at a time: intercept what Lagless answers itself, classify, route (a pure
//! decision from `lagless-routing`), execute on the chosen server, then record the outcome.
//!
//! Parts: [`state`] (session variables and schema replayed across servers), [`prepared`]
//! (statement ids mapped per server), [`intercept`] (`SHOW LAGLESS ...`), [`change_user`].

mod change_user;
mod commands;
mod intercept;
mod prepared;
mod set_names;
mod state;
mod trx_replay;

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use lagless_config::{Config, UserRoute};
use lagless_protocol::consts::{self, Command};
use lagless_protocol::ok_err::OkPacket;
use lagless_protocol::packet::{encode_packet, Packet};
use lagless_protocol::response::Expect;
use lagless_routing::consistency::ReplicaCheck;
use lagless_routing::gtid::MariaPos;
use lagless_routing::{
    route, Reason, RouteInput, RoutePlan, ServerRef, SessionRouting, TargetKind,
};
use lagless_sql::{classify, Classification, StatementClass};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;
use tracing::debug;

use crate::backends::{backend_capabilities, BackendSettings, SessionBackends};
use crate::client::ClientConn;
use crate::cluster_state::Counted;
use crate::context::ProxyContext;
use crate::error::{err_packet, SessionError};
use crate::handshake::ClientIdentity;
use crate::peer::Peer;
use crate::relay::{command, relay_response, Relayed};
use crate::wakers::WakerSlot;
use prepared::Statements;
use state::TrackedState;

/// How long a `pos_wait` read right after a write waits for the write's binlog position from
/// the primary's binlog stream (see `Engine::await_write_position`).
const WRITE_POSITION_WAIT: Duration = Duration::from_millis(20);

/// How long a server that failed is left out of the read pool before it is tried again.
const DOWN_PERIOD: Duration = Duration::from_secs(2);

/// Whether the session goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// A client session after authentication.
pub struct Engine {
    pub(crate) ctx: Arc<ProxyContext>,
    /// The configuration snapshot this session started with.
    pub(crate) config: Arc<Config>,
    pub client: ClientConn,
    identity: ClientIdentity,
    peer: Peer,
    backends: SessionBackends,
    pub(crate) routing: SessionRouting,
    tracked: TrackedState,
    stmts: Statements,
    /// The server of the session's open transaction was lost: the transaction is gone, and
    /// every statement fails until the client ends it (as on a single server whose connection
    /// dropped, but the client keeps its connection).
    pub(crate) trx_lost: bool,
    /// The connection the last statement ran on is kept for the next one (see
    /// [`Engine::release_connections`]).
    hold: Option<ServerRef>,
    /// User variables or SQL-level prepared statements were used: they live on the connection,
    /// so the session keeps its connections until a reset.
    conn_state: bool,
    /// The open transaction's statements, to replay it elsewhere (see [`trx_replay`]).
    trx_log: Option<trx_replay::TrxLog>,
    /// Woken when a server is demoted: a statement waiting on it ends (`until_demoted`).
    demotion_watch: WakerSlot,
}

/// What to send once the server is known.
enum Outgoing<'p> {
    /// The client's packet as it is.
    Packet(&'p Packet),
    /// COM_STMT_EXECUTE of a client statement id: prepared on the server first if needed.
    Execute(u32, &'p [u8]),
}

/// Why one attempt failed.
enum Attempt {
    /// The statement was not sent (no connection, the write failed): another server may run it.
    Retryable(SessionError),
    /// The statement was sent but no byte of an answer reached the client: a read may be
    /// retried elsewhere; a write's outcome is unknown and must not be replayed.
    NoAnswer(SessionError),
    /// The server answered with an error packet of its own that must reach the client as is.
    ServerError(lagless_protocol::ok_err::ErrPacket),
    /// The replica has not applied the session's last write: the read goes to the primary.
    Behind,
    /// The replica answered with an error that may mean it lags behind a schema change (the
    /// code; the client saw nothing): the read goes to the primary.
    SchemaBehind(u16),
    /// The session cannot go on.
    Fatal(SessionError),
}

impl Engine {
    pub fn new(
        ctx: Arc<ProxyContext>,
        client: ClientConn,
        identity: ClientIdentity,
        peer: Peer,
        shard: usize,
    ) -> Self {
        let config = ctx.config.clone();
        let user = config.user(&identity.user);
        let cluster = config
            .clusters
            .iter()
            .position(|c| user.is_some_and(|u| u.cluster == c.name))
            .unwrap_or(0);
        let primary_only = user.is_some_and(|u| u.route == UserRoute::Primary);
        let consistency = user
            .and_then(|u| u.consistency)
            .unwrap_or(config.consistency.default);
        let settings = backend_settings(&ctx, &client, &identity);
        let backends = SessionBackends::new(&config, settings, ctx.pool.clone(), shard);
        let routing = SessionRouting::new(
            cluster,
            config.clusters.len(),
            &identity.user,
            identity.database.clone(),
            primary_only,
        );
        let mut routing = routing;
        routing.consistency = consistency;
        let tracked = TrackedState::new(identity.database.clone());
        let demotion_watch = ctx.cluster.watch_demotions();
        Engine {
            demotion_watch,
            ctx,
            config,
            client,
            identity,
            peer,
            backends,
            routing,
            tracked,
            stmts: Statements::default(),
            trx_lost: false,
            hold: None,
            conn_state: false,
            trx_log: None,
        }
    }

    /// A read whose replica answered with schema-lag error `code` runs on the primary (see
    /// `lagless_routing::schema_lag`); counted.
    fn schema_lag_plan(&self, code: u16) -> RoutePlan {
        self.ctx
            .stats
            .reads_schema_behind
            .fetch_add(1, Ordering::Relaxed);
        RoutePlan {
            reason: Reason::ReplicaLacksSchema(code),
            ..self.primary_plan()
        }
    }

    fn primary_plan(&self) -> RoutePlan {
        let view = self.ctx.cluster.view(Instant::now());
        RoutePlan {
            server: view.primary(self.routing.cluster),
            kind: TargetKind::Primary,
            reason: Reason::Class("proxy command"),
            new_sticky: false,
            hint_ignored: false,
            commit_first: None,
            check: ReplicaCheck::None,
            move_from: None,
        }
    }

    /// Finishes the handshake: the primary connection is opened now so that an unknown database
    /// or an unreachable cluster is reported at connect time, as a server would.
    /// Returns false when the client was refused.
    ///
    /// # Errors
    /// Client I/O errors.
    pub async fn open(&mut self) -> Result<bool, SessionError> {
        let seq = self.identity.next_seq;
        let view = self.ctx.cluster.view(Instant::now());
        let cluster = self.routing.cluster;
        let primary = view.primary(cluster);
        // The primary first; if it cannot be reached, any replica can vouch for the schema so
        // that reads go on while the primary is away.
        let mut candidates = vec![primary];
        candidates.extend(
            (0..view.clusters[cluster].servers.len())
                .map(|server| ServerRef { cluster, server })
                .filter(|r| *r != primary && view.is_usable(*r)),
        );
        let mut last_error = None;
        for r in candidates {
            let conn = match self.backends.get(&self.config, r).await {
                Ok(conn) => check_schema(conn, self.identity.database.as_deref()).await,
                Err(e) => Err(e),
            };
            match conn {
                Ok(conn) => {
                    debug!(backend = %conn.server_name, backend_id = conn.connection_id, "client authenticated");
                    self.release_connections();
                    let ok = OkPacket {
                        status: consts::SERVER_STATUS_AUTOCOMMIT,
                        ..OkPacket::default()
                    };
                    self.client.queue_ok(seq, &ok);
                    self.client.flush().await?;
                    return Ok(true);
                }
                // The server answered (unknown database, access denied): that is the answer.
                Err(
                    e @ SessionError::Backend {
                        source: lagless_backend::BackendError::Server { .. },
                        ..
                    },
                ) => {
                    last_error = Some(e);
                    break;
                }
                Err(e) => {
                    if r != primary {
                        self.ctx.cluster.mark_down(r, DOWN_PERIOD, Instant::now());
                    }
                    last_error = Some(e);
                }
            }
        }
        if let Some(e) = last_error {
            self.send_error(seq, &e).await?;
        }
        Ok(false)
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
        let flow = match Command::from_u8(code) {
            Some(Command::Quit) => Ok(Flow::Close),
            Some(Command::ChangeUser) => self.change_user(packet).await,
            Some(Command::Query) => self.query(&packet).await,
            Some(Command::StmtPrepare) => self.prepare(&packet).await,
            Some(Command::StmtExecute) => self.execute_statement(&packet).await,
            Some(Command::StmtSendLongData) => self.long_data(&packet),
            Some(Command::StmtClose) => self.close_statement(&packet).await,
            Some(Command::StmtReset) => self.reset_statement(&packet).await,
            Some(Command::StmtFetch) => self.fetch(&packet).await,
            Some(Command::ResetConnection) => self.reset_connection(&packet).await,
            Some(Command::SetOption) => self.set_option(&packet).await,
            Some(Command::ProcessInfo) => self.on_primary(&packet, Expect::Query).await,
            Some(Command::FieldList) => self.on_primary(&packet, Expect::FieldList).await,
            Some(
                Command::Ping
                | Command::InitDb
                | Command::Statistics
                | Command::Refresh
                | Command::Debug,
            ) => self.on_primary(&packet, Expect::Single).await,
            other => self.unknown_command(code, other, &packet).await,
        };
        self.release_connections();
        flow
    }

    async fn unknown_command(
        &mut self,
        code: u8,
        other: Option<Command>,
        packet: &Packet,
    ) -> Result<Flow, SessionError> {
        let name = other.map_or("unknown", |c| c.name());
        let err = err_packet(
            consts::ER_UNKNOWN_COM_ERROR,
            format!("Unknown command {code:#04x} ({name}): not supported through Lagless"),
        );
        self.client.queue_err(packet.last_seq.wrapping_add(1), &err);
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    /// Whether the session has state that lives on its backend connections (so it must keep
    /// them): a transaction, temporary tables, locks, user variables, prepared statements.
    fn bound_to_connections(&self) -> bool {
        let r = &self.routing;
        r.trx.active
            || r.trx.next_on_primary
            || r.pins.any()
            || self.conn_state
            || self.trx_lost
            || self.stmts.cursor_opened
    }

    /// A connection kept for the session's next statement (see [`leaves_state_to_ask`]).
    pub fn holds_connection(&self) -> bool {
        self.config.pool.multiplex && self.hold.is_some_and(|r| self.backends.holds(r))
    }

    /// The session stayed idle with a held connection: it goes back to the pool.
    pub fn release_held(&mut self) {
        self.hold = None;
        self.release_connections();
    }

    /// Multiplexing: after a command, a session without connection-bound state gives its
    /// backend connections back to the pool, so that idle clients hold none. The connection
    /// of a statement that leaves something to ask about (a write's LAST_INSERT_ID() or
    /// ROW_COUNT(), warnings) is kept until the next command is done.
    fn release_connections(&mut self) {
        if !self.config.pool.multiplex || self.bound_to_connections() {
            return;
        }
        self.backends.release(self.hold);
    }

    /// COM_QUERY: intercept, classify, route, run.
    async fn query(&mut self, packet: &Packet) -> Result<Flow, SessionError> {
        let text = sql_text(&packet.payload[1..]);
        if let Some(cmd) = intercept::intercept(&text) {
            return self.answer_intercepted(cmd).await;
        }
        let names_collation = set_names::names_collation(&text);
        if let Some(collation) = &names_collation {
            if self.may_answer_set_names() {
                let view = self.ctx.cluster.view(Instant::now());
                let primary = view.primary(self.routing.cluster);
                if let Some(vars) = self.ctx.set_names_result(primary, text.trim()) {
                    self.tracked.apply(&vars);
                    self.tracked.set_collation_connection(collation.clone());
                    self.ctx
                        .stats
                        .set_names_answered
                        .fetch_add(1, Ordering::Relaxed);
                    return self.reply_ok().await;
                }
            }
            self.tracked.begin_capture();
        }
        let c = classify(&text, &self.tracked.lex);
        if self.trx_lost {
            return self.after_lost_transaction(&c).await;
        }
        if c.class == StatementClass::Unknown {
            self.ctx
                .stats
                .unknown_statements
                .fetch_add(1, Ordering::Relaxed);
        }
        // A consistency hint in the first comment applies to this statement only.
        let session_mode = self.routing.consistency;
        if let Some(mode) = intercept::consistency_hint(&text) {
            self.routing.consistency = mode;
        }
        self.await_write_position(&c).await;
        let plan = self.plan(&c);
        let result = self
            .run(&c, plan, Outgoing::Packet(packet), Some(Expect::Query))
            .await;
        self.routing.consistency = session_mode;
        if let (Some(collation), Some(set)) = (names_collation, self.tracked.take_capture()) {
            // Only after a server's OK that set the character sets (an error sets nothing).
            if result.is_ok() && set.iter().any(|(n, _)| n == "character_set_connection") {
                if let Some(primary) = self.routing.last {
                    let charsets = set
                        .into_iter()
                        .filter(|(n, _)| n.starts_with("character_set_"))
                        .collect();
                    self.ctx.remember_set_names(primary, text.trim(), charsets);
                }
                self.tracked.set_collation_connection(collation);
                // The connection that ran it has the collation too.
                if let Some(conn) = self.routing.last.and_then(|r| self.backends.existing(r)) {
                    self.tracked.mark_synced(conn);
                }
            }
        }
        result
    }

    /// A `SET NAMES` the primary answered before is answered by Lagless (see `set_names`) when
    /// nothing depends on it reaching a server: no connection-bound state (a transaction runs
    /// on its connection), multiplexing on, and a client that does not read session tracking
    /// (the local OK carries none).
    fn may_answer_set_names(&self) -> bool {
        self.config.pool.multiplex
            && !self.bound_to_connections()
            && self.client.capabilities & lagless_protocol::consts::CLIENT_SESSION_TRACK == 0
    }

    /// The routing decision for this session now, with the view it was made on.
    pub(crate) fn decide(
        &self,
        c: &Classification<'_>,
    ) -> (RoutePlan, Arc<lagless_routing::ClusterView>) {
        let view = self.ctx.cluster.view(Instant::now());
        let global = self.global_for_routing();
        if self.routing.consistency.uses_binlog_positions() {
            // Starts the primaries' binlog streams, for positions, the first time.
            self.ctx.cluster.want_primary_positions();
        }
        if self.routing.consistency.uses_replica_gtids() {
            // Starts the replicas' binlog streams, for executed GTIDs, the first time.
            self.ctx.cluster.want_replica_gtids();
        }
        let plan = route(&RouteInput {
            stmt: c,
            session: &self.routing,
            view: &view,
            config: &self.config,
            draw: self.ctx.cluster.draw(),
            global: &global,
            now_ms: self.ctx.now_ms(),
        });
        (plan, view)
    }

    /// `pos_wait`: right after a write, its binlog position is still on its way from the
    /// primary's binlog stream (about a millisecond). Waiting for it, up to
    /// [`WRITE_POSITION_WAIT`], lets the read wait on a replica as the mode says, where
    /// routing would otherwise send it to the primary for want of a position.
    async fn await_write_position(&self, c: &Classification<'_>) {
        let lagless_config::Consistency::PosWait(timeout) = self.routing.consistency else {
            return;
        };
        let Some(at) = self.routing.write.at_ms else {
            return;
        };
        if self.routing.trx.active || !lagless_routing::decide::replica_safe(c) {
            return;
        }
        let bound = timeout.min(WRITE_POSITION_WAIT).as_millis() as u64;
        let since = self.ctx.now_ms().saturating_sub(at);
        if since >= bound {
            return; // waited for before, or too old: the polls will tell
        }
        let until = Instant::now() + Duration::from_millis(bound - since);
        let (cluster, gtids) = (self.routing.cluster, &self.routing.write.gtids);
        self.ctx
            .cluster
            .await_write_position(cluster, gtids, until)
            .await;
    }

    fn plan(&self, c: &Classification<'_>) -> RoutePlan {
        let (plan, _) = self.decide(c);
        if self.routing.consistency == lagless_config::Consistency::Position
            && matches!(plan.reason, lagless_routing::Reason::ReplicasBehind(_))
        {
            // Replicas' executed positions come from the monitor's probes only: ask for a
            // round now (the monitor keeps rounds at least a tenth of its interval apart), so
            // that the next reads see replicas that have caught up since the last one.
            self.ctx.cluster.probe_soon(self.routing.cluster);
        }
        if plan.hint_ignored {
            self.ctx.stats.hints_ignored.fetch_add(1, Ordering::Relaxed);
        }
        plan
    }

    /// Commands that always go to the session's primary.
    async fn on_primary(&mut self, packet: &Packet, expect: Expect) -> Result<Flow, SessionError> {
        let c = classify("", &self.tracked.lex);
        let plan = self.primary_plan();
        self.run(&c, plan, Outgoing::Packet(packet), Some(expect))
            .await
    }

    /// Runs a routed command, retrying a read elsewhere when its replica fails before the
    /// client saw anything.
    async fn run(
        &mut self,
        c: &Classification<'_>,
        mut plan: RoutePlan,
        out: Outgoing<'_>,
        expect: Option<Expect>,
    ) -> Result<Flow, SessionError> {
        let reply_seq = match &out {
            Outgoing::Packet(p) => p.last_seq.wrapping_add(1),
            Outgoing::Execute(..) => 1,
        };
        if let Some(from) = plan.move_from {
            if !self.move_optimistic(from, plan.server, reply_seq).await? {
                return Ok(Flow::Continue);
            }
        }
        loop {
            // Writes wait while a failover is choosing the new primary.
            if plan.kind == TargetKind::Primary
                && !self.routing.trx.active
                && self.ctx.cluster.failing_over(plan.server.cluster)
            {
                self.wait_failover_end(plan.server.cluster).await;
                plan = self.plan(c);
            }
            self.adopt(&plan).await;
            let server = plan.server;
            let outcome = self.attempt(&plan, &out, expect).await;
            let sent = matches!(outcome, Err(Attempt::NoAnswer(_)));
            if let Err(Attempt::Retryable(e) | Attempt::NoAnswer(e) | Attempt::Fatal(e)) = &outcome
            {
                if e.is_backend_connection_failure() {
                    self.ctx.cluster.suspect(server);
                }
            }
            match outcome {
                Ok(relayed) => {
                    self.record(c, &plan, relayed);
                    self.note_transaction(c, &plan, &out, &relayed);
                    return Ok(Flow::Continue);
                }
                Err(Attempt::Retryable(e) | Attempt::NoAnswer(e))
                    if plan.kind == TargetKind::Replica && !self.routing.trx.active =>
                {
                    debug!(server = %self.server_name(server), error = %e, "read failed before any byte reached the client; retrying");
                    self.ctx
                        .cluster
                        .mark_down(server, DOWN_PERIOD, Instant::now());
                    self.ctx.stats.read_retries.fetch_add(1, Ordering::Relaxed);
                    plan = self.plan(c);
                }
                Err(Attempt::Retryable(e) | Attempt::NoAnswer(e))
                    if self.routing.trx.optimistic && self.routing.trx.server == Some(server) =>
                {
                    // The optimistic transaction's replica failed before the client saw any of
                    // the answer: the transaction goes on on the primary, replayed there.
                    debug!(server = %self.server_name(server), error = %e, "optimistic transaction's replica failed; moving it to the primary");
                    self.ctx
                        .cluster
                        .mark_down(server, DOWN_PERIOD, Instant::now());
                    let primary = self.primary_plan();
                    if !self
                        .move_optimistic(server, primary.server, reply_seq)
                        .await?
                    {
                        return Ok(Flow::Continue);
                    }
                    plan = RoutePlan {
                        reason: Reason::Transaction,
                        ..primary
                    };
                }
                Err(Attempt::Retryable(e) | Attempt::NoAnswer(e))
                    if self.config.failover.transaction_replay
                        && self.routing.trx.active
                        && self.routing.trx.server == Some(server)
                        && (!sent || trx_replay::redo_is_safe(c)) =>
                {
                    // The transaction's connection was lost before the client saw any of the
                    // answer: it is replayed on the primary and goes on there.
                    debug!(server = %self.server_name(server), error = %e, "transaction's connection lost; replaying it on the primary");
                    if plan.kind != TargetKind::Primary {
                        self.ctx
                            .cluster
                            .mark_down(server, DOWN_PERIOD, Instant::now());
                    }
                    let Some(primary) = self.resume_transaction(server, reply_seq).await? else {
                        return Ok(Flow::Continue);
                    };
                    plan = RoutePlan {
                        server: primary,
                        reason: Reason::Transaction,
                        ..self.primary_plan()
                    };
                }
                Err(Attempt::Retryable(e))
                    if plan.kind == TargetKind::Primary
                        && !self.routing.trx.active
                        && self.config.failover.enabled =>
                {
                    // The primary cannot be reached and the statement was not sent: wait for
                    // a failover to name a new primary, then run it there.
                    if self.wait_for_new_primary(server).await {
                        plan = self.plan(c);
                        continue;
                    }
                    self.ctx
                        .stats
                        .backend_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.send_error(reply_seq, &e).await?;
                    return Ok(Flow::Continue);
                }
                Err(Attempt::Retryable(e) | Attempt::NoAnswer(e)) => {
                    if self.routing.trx.active && self.routing.trx.server == Some(server) {
                        // The transaction lived on that connection only.
                        self.trx_lost = true;
                        // The transaction ended; the session's autocommit setting did not.
                        let status = self.autocommit_status();
                        self.routing.observe_status(Some(status), server);
                    }
                    if matches!(
                        e,
                        SessionError::Backend { .. } | SessionError::BackendLost { .. }
                    ) && plan.kind != TargetKind::Primary
                    {
                        self.ctx
                            .cluster
                            .mark_down(server, DOWN_PERIOD, Instant::now());
                    }
                    self.ctx
                        .stats
                        .backend_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.send_error(reply_seq, &e).await?;
                    return Ok(Flow::Continue);
                }
                Err(Attempt::Behind) => {
                    self.ctx.stats.reads_behind.fetch_add(1, Ordering::Relaxed);
                    plan = RoutePlan {
                        reason: Reason::ReplicasBehind(self.routing.consistency.to_string()),
                        ..self.primary_plan()
                    };
                }
                Err(Attempt::SchemaBehind(code)) => {
                    debug!(server = %self.server_name(server), code, "the replica lacks what the read names; running it on the primary");
                    plan = self.schema_lag_plan(code);
                }
                Err(Attempt::ServerError(err)) => {
                    self.client.queue_err(reply_seq, &err);
                    self.client.flush().await?;
                    return Ok(Flow::Continue);
                }
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
    }

    /// Waits (up to `failover.hold_writes`) until the routing view names a primary other than
    /// `old`. True when it does.
    async fn wait_for_new_primary(&self, old: ServerRef) -> bool {
        let deadline = Instant::now() + self.config.failover.hold_writes;
        loop {
            let view = self.ctx.cluster.view(Instant::now());
            if view.primary(old.cluster) != old {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// While the open transaction's server is lost: ROLLBACK ends it quietly, COMMIT ends it with
    /// an error (nothing was committed), anything else is refused.
    async fn after_lost_transaction(
        &mut self,
        c: &Classification<'_>,
    ) -> Result<Flow, SessionError> {
        use lagless_sql::TransactionKind;
        let (ok, message) = match c.class {
            StatementClass::Transaction(TransactionKind::Rollback { .. }) => (true, ""),
            StatementClass::Transaction(TransactionKind::Commit { .. }) => (
                false,
                "The transaction was lost with its server (failover): nothing was committed",
            ),
            _ => (
                false,
                "The transaction was lost with its server (failover): ROLLBACK to continue",
            ),
        };
        if ok
            || matches!(
                c.class,
                StatementClass::Transaction(TransactionKind::Commit { .. })
            )
        {
            self.trx_lost = false;
        }
        if ok {
            let status = self.autocommit_status();
            self.client.queue_ok(
                1,
                &OkPacket {
                    status,
                    ..OkPacket::default()
                },
            );
        } else {
            self.client
                .queue_err(1, &err_packet(consts::PROXY_TRANSACTION_LOST, message));
        }
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    /// Status flags of a session outside a transaction: autocommit as the session set it.
    fn autocommit_status(&self) -> u16 {
        if self.routing.trx.autocommit {
            consts::SERVER_STATUS_AUTOCOMMIT
        } else {
            0
        }
    }

    /// Waits (up to `failover.hold_writes`) for a running failover to finish.
    async fn wait_failover_end(&self, cluster: usize) {
        let deadline = Instant::now() + self.config.failover.hold_writes;
        while self.ctx.cluster.failing_over(cluster) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Applies what the plan asks of the session before running it: a new sticky replica, or
    /// ending a read-only transaction on another server.
    async fn adopt(&mut self, plan: &RoutePlan) {
        if plan.new_sticky {
            let cluster = plan.server.cluster;
            if let Some(old) = self.routing.sticky[cluster].replace(plan.server) {
                self.ctx.cluster.sticky(old, false);
            }
            self.ctx.cluster.sticky(plan.server, true);
        }
        if let Some(r) = plan.commit_first {
            if let Some(conn) = self.backends.existing(r) {
                let status = command(conn, b"\x03COMMIT", Expect::Query)
                    .await
                    .ok()
                    .and_then(|reply| reply.status);
                self.routing
                    .observe_status(status.or(Some(consts::SERVER_STATUS_AUTOCOMMIT)), r);
            }
        }
    }

    /// One try on one server.
    async fn attempt(
        &mut self,
        plan: &RoutePlan,
        out: &Outgoing<'_>,
        expect: Option<Expect>,
    ) -> Result<Relayed, Attempt> {
        let server = plan.server;
        let Engine {
            backends,
            config,
            tracked,
            client,
            stmts,
            routing,
            ctx,
            demotion_watch,
            ..
        } = self;
        // A replica's "no such table" may be schema lag: the read is run on the primary then.
        let divert_schema_lag = plan.kind == TargetKind::Replica && !routing.trx.active;
        let conn = backends.get(config, server).await.map_err(|e| match e {
            SessionError::PoolExhausted { .. } => match e.to_err_packet() {
                Some(err) => Attempt::ServerError(err),
                None => Attempt::Fatal(e),
            },
            e => Attempt::Retryable(e),
        })?;
        // The server's role comes from the routing view, not from when the connection was
        // opened: a failover may have promoted it since. A connection that becomes a primary's
        // gets the whole session state again (autocommit is replayed on primaries only).
        let primary_now = ctx.cluster.is_primary(server);
        if conn.is_primary != primary_now {
            conn.is_primary = primary_now;
            conn.synced_version = u64::MAX;
        }
        if let Err(e) = tracked.sync(conn).await {
            if let Some(code) = e.server_error_code() {
                // Refused the session's schema; the connection itself is fine.
                if divert_schema_lag && lagless_routing::schema_lag::may_be_schema_lag(code) {
                    return Err(Attempt::SchemaBehind(code));
                }
                if let Some(err) = e.to_err_packet() {
                    return Err(Attempt::ServerError(err));
                }
            }
            backends.drop_conn(server);
            return Err(Attempt::Retryable(e));
        }
        // The consistency mode's condition for reading on this replica.
        if !conn.is_primary && !routing.trx.active {
            match check_replica(conn, &plan.check, ctx.now_ms()).await {
                Ok(CheckOutcome::Pass(Some(applied))) => routing.saw(server, &applied),
                Ok(CheckOutcome::Pass(None)) => {}
                Ok(CheckOutcome::Behind) => return Err(Attempt::Behind),
                Ok(CheckOutcome::Abandoned) => {
                    // The connection is still inside the wait: it cannot be reused.
                    backends.drop_conn(server);
                    return Err(Attempt::Behind);
                }
                Err(e) => {
                    backends.drop_conn(server);
                    return Err(Attempt::Retryable(e));
                }
            }
        }
        let payload: Cow<'_, [u8]> = match out {
            Outgoing::Packet(p) => Cow::Borrowed(&p.payload[..]),
            Outgoing::Execute(id, payload) => {
                match prepared_execute(stmts, *id, payload, conn, divert_schema_lag).await {
                    Ok(()) => Cow::Borrowed(&stmts.exec_buf[..]),
                    Err(a) => {
                        if matches!(a, Attempt::Retryable(_)) {
                            backends.drop_conn(server);
                        }
                        return Err(a);
                    }
                }
            }
        };
        let seq = match out {
            Outgoing::Packet(p) => p.seq,
            Outgoing::Execute(..) => 0,
        };
        // The connection's own write buffer, reused: no allocation per statement.
        conn.wbuf.clear();
        encode_packet(seq, &payload, &mut conn.wbuf);
        conn.clean = false;
        if conn.stream.write_all(&conn.wbuf).await.is_err() {
            let e = SessionError::BackendLost {
                server: conn.server_name.clone(),
            };
            backends.drop_conn(server);
            return Err(Attempt::Retryable(e));
        }
        if conn.wbuf.capacity() > 1 << 20 {
            // A huge statement passed: give the memory back.
            conn.wbuf = BytesMut::with_capacity(1024);
        }
        if stmts.exec_buf.capacity() > 1 << 20 {
            stmts.exec_buf = Vec::new();
        }
        let Some(expect) = expect else {
            // Nothing comes back (COM_STMT_CLOSE and the like).
            conn.clean = true;
            return Ok(Relayed::default());
        };
        let caps = conn.capabilities;
        // A kept transaction's results are remembered, to check them when it is replayed.
        let digest =
            plan.reason == Reason::OptimisticTransaction || config.failover.transaction_replay;
        let relay = relay_response(conn, client, expect, digest, divert_schema_lag, |ok| {
            tracked.learn(ok, caps);
            // Published before the OK reaches the client: a `global` read the client then
            // makes on another connection must already see it.
            if let Some(g) = tracked.pending_gtid().and_then(|g| g.parse().ok()) {
                ctx.committed(&g);
            }
        });
        // A primary that hangs is failed over without answering: the statement waiting on it
        // then ends with an error (outcome unknown) instead of waiting forever.
        let Some(outcome) = ctx
            .cluster
            .until_demoted(server, demotion_watch, relay)
            .await
        else {
            let answering = backends.existing(server).is_some_and(|c| c.answering);
            backends.drop_conn(server);
            let name = config.clusters[server.cluster].servers[server.server]
                .name
                .clone();
            let e = SessionError::BackendLost { server: name };
            // Part of the answer reached the client: only closing the connection is honest.
            return Err(if answering {
                Attempt::Fatal(e)
            } else {
                Attempt::NoAnswer(e)
            });
        };
        let conn = backends
            .existing(server)
            .expect("the connection used above");
        match outcome {
            Ok(relayed) => {
                tracked.mark_synced(conn);
                conn.clean = true;
                Ok(relayed)
            }
            Err(r) => {
                if let Some(code) = r.error.server_error_code().filter(|_| !r.client_saw_bytes) {
                    // The relay held back an error that may mean schema lag (see relay_response).
                    tracked.mark_synced(conn);
                    conn.clean = true;
                    return Err(Attempt::SchemaBehind(code));
                }
                backends.drop_conn(server);
                if r.client_saw_bytes || matches!(r.error, SessionError::ClientIo(_)) {
                    // Part of the result already reached the client: the only honest signal
                    // left is closing the connection, as a server that died would.
                    Err(Attempt::Fatal(r.error))
                } else {
                    Err(Attempt::NoAnswer(r.error))
                }
            }
        }
    }

    /// The proxy-wide GTIDs, read only for sessions in `global` mode (it takes a lock).
    pub(crate) fn global_for_routing(&self) -> MariaPos {
        if self.routing.consistency == lagless_config::Consistency::Global {
            self.ctx.global_gtids()
        } else {
            MariaPos::default()
        }
    }

    /// Updates routing state and counters after a statement ran.
    fn record(&mut self, c: &Classification<'_>, plan: &RoutePlan, relayed: Relayed) {
        // Already published proxy-wide when its OK was seen (see `attempt`).
        if let Some(gtid) = self.tracked.take_last_gtid() {
            self.routing.record_write(&gtid, self.ctx.now_ms());
        }
        let cluster = &self.ctx.cluster;
        self.routing.after_plan(
            c,
            plan,
            || cluster.is_primary(plan.server),
            relayed.status,
            !relayed.was_error,
        );
        self.conn_state |= binds_connection(c, &self.tracked.lex);
        self.hold = leaves_state_to_ask(c, &relayed).then_some(plan.server);
        let counted = match c.class {
            StatementClass::Read
            | StatementClass::ReadPrimaryOnly
            | StatementClass::LockingRead
            | StatementClass::Meta(_) => Counted::Read,
            StatementClass::Write | StatementClass::Call => Counted::Write,
            _ => Counted::Other,
        };
        self.ctx.cluster.count(plan.server, counted);
        // Only when it changed: this runs for every statement.
        if self.routing.schema != self.tracked.schema {
            self.routing.schema.clone_from(&self.tracked.schema);
            self.backends
                .settings
                .database
                .clone_from(&self.tracked.schema);
        }
    }

    fn server_name(&self, r: ServerRef) -> &str {
        &self.config.clusters[r.cluster].servers[r.server].name
    }

    async fn send_error(&mut self, seq: u8, e: &SessionError) -> Result<(), SessionError> {
        debug!(error = %e, "command failed");
        if let Some(err) = e.to_err_packet() {
            self.client.queue_err(seq, &err);
        }
        self.client.flush().await
    }

    /// Forgets the session's server-side state (COM_RESET_CONNECTION, COM_CHANGE_USER).
    fn reset_state(&mut self, schema: Option<String>) {
        self.routing.reset();
        self.routing.schema.clone_from(&schema);
        self.tracked = TrackedState::new(schema);
        self.stmts.clear();
        self.conn_state = false;
        self.hold = None;
        self.trx_log = None;
        for conn in self.backends.open_conns() {
            conn.synced_version = u64::MAX;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for r in self.routing.sticky.iter().flatten() {
            self.ctx.cluster.sticky(*r, false);
        }
        // Connections without the session's bound state serve other sessions; the others close.
        if !self.bound_to_connections() {
            self.backends.release(None);
        }
    }
}

/// Does the statement leave state on its connection that only that connection can answer
/// about (user variables, SQL-level prepared statements)?
fn binds_connection(c: &Classification<'_>, lex: &lagless_sql::LexOptions) -> bool {
    use lagless_sql::SessionKind;
    let prepares = |c: &Classification<'_>| {
        matches!(
            c.class,
            StatementClass::SessionState(SessionKind::Prepare(_))
        )
    };
    c.uses_user_variables
        || prepares(c)
        || (c.multi && lagless_sql::statements(c.text, lex).any(|s| prepares(&s)))
}

/// Should the next statement run on the same connection? After a statement that generated an
/// AUTO_INCREMENT value (LAST_INSERT_ID()), had warnings (SHOW WARNINGS) or counted rows for
/// FOUND_ROWS(), yes (like ProxySQL's auto_increment_delay_multiplex, for one statement or
/// until `[pool] hold_ms` of idleness).
fn leaves_state_to_ask(c: &Classification<'_>, relayed: &Relayed) -> bool {
    relayed.warnings > 0
        || relayed.insert_id != 0
        || (matches!(c.class, StatementClass::Read)
            && contains_ignore_case(c.text, b"sql_calc_found_rows"))
}

fn contains_ignore_case(text: &str, needle: &[u8]) -> bool {
    // Runs for every read: compare whole windows only where the first byte matches.
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let text = text.as_bytes();
    let Some(last_start) = text.len().checked_sub(needle.len()) else {
        return false;
    };
    text[..=last_start].iter().enumerate().any(|(i, b)| {
        b.eq_ignore_ascii_case(&first) && text[i + 1..i + needle.len()].eq_ignore_ascii_case(rest)
    })
}

/// A pooled connection may be in another schema: the session's must exist (the error a server
/// gives at login for an unknown database is given here).
async fn check_schema<'c>(
    conn: &'c mut crate::backends::BackendConn,
    schema: Option<&str>,
) -> Result<&'c mut crate::backends::BackendConn, SessionError> {
    if let Some(db) = schema {
        state::use_schema(conn, db).await?;
    }
    Ok(conn)
}

/// What a consistency check on a replica found.
enum CheckOutcome {
    /// Read there; with the GTIDs it was seen to have applied, if the check learned them.
    Pass(Option<MariaPos>),
    Behind,
    /// The mode's timeout passed before the server answered (a wait the server only takes in
    /// whole seconds): behind, and the connection is mid-statement.
    Abandoned,
}

/// Runs the plan's consistency check on a replica connection.
async fn check_replica(
    conn: &mut crate::backends::BackendConn,
    check: &ReplicaCheck,
    now_ms: u64,
) -> Result<CheckOutcome, SessionError> {
    match check {
        ReplicaCheck::None => Ok(CheckOutcome::Pass(None)),
        ReplicaCheck::HoldUntil(t) => {
            tokio::time::sleep(Duration::from_millis(t.saturating_sub(now_ms))).await;
            Ok(CheckOutcome::Pass(None))
        }
        ReplicaCheck::GtidWait { gtids, timeout } => {
            // A zero timeout answers at once: "already applied?" without waiting.
            let sql = format!(
                "\x03SELECT MASTER_GTID_WAIT('{gtids}', {:.3})",
                timeout.as_secs_f64()
            );
            let value = scalar(conn, &sql).await?;
            Ok(if value.as_deref() == Some("0") {
                CheckOutcome::Pass(gtids.parse().ok())
            } else {
                CheckOutcome::Behind
            })
        }
        ReplicaCheck::PosWait { pos, timeout } => {
            // MASTER_POS_WAIT takes whole seconds (a fraction is cut off, and 0 means
            // "forever"): the server waits the timeout rounded up, at least 1 s, and a timeout
            // that is not whole seconds is kept here, giving the connection up when it passes.
            let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
            let file = pos.file.replace('\'', "");
            let sql = format!("\x03SELECT MASTER_POS_WAIT('{file}', {}, {secs})", pos.pos);
            let value = if timeout.subsec_nanos() == 0 && !timeout.is_zero() {
                scalar(conn, &sql).await?
            } else {
                match tokio::time::timeout(*timeout, scalar(conn, &sql)).await {
                    Ok(v) => v?,
                    Err(_) => return Ok(CheckOutcome::Abandoned),
                }
            };
            let reached = value
                .as_deref()
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|n| n >= 0);
            Ok(if reached {
                CheckOutcome::Pass(None)
            } else {
                CheckOutcome::Behind
            })
        }
    }
}

/// The first column of the single row a control query returns (None for NULL or an error).
async fn scalar(
    conn: &mut crate::backends::BackendConn,
    sql: &str,
) -> Result<Option<String>, SessionError> {
    let reply = command(conn, sql.as_bytes(), Expect::Query).await?;
    if reply.error.is_some() {
        return Ok(None);
    }
    // Column count, definition, [EOF], the row, EOF/OK: the row is the packet before the last.
    let Some(row) = reply
        .packets
        .len()
        .checked_sub(2)
        .map(|i| &reply.packets[i].payload[..])
    else {
        return Ok(None);
    };
    let mut r = lagless_protocol::lenenc::Reader::new(row);
    Ok(r.lenenc_bytes_or_null()
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(b).into_owned()))
}

/// The SQL text of a COM_QUERY: UTF-8 borrowed as is; anything else made valid for the
/// classifier (the bytes sent to the server are the original ones).
fn sql_text(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` first: its validation is several times cheaper than the lossy decoder's
    // chunk iterator, and nearly every statement is valid UTF-8.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The execute payload for `conn` (left in `stmts.exec_buf`), preparing the statement on that
/// connection first if it does not have it (see `crate::stmt_cache`) and sending the long data
/// buffered for it.
async fn prepared_execute(
    stmts: &mut Statements,
    id: u32,
    payload: &[u8],
    conn: &mut crate::backends::BackendConn,
    divert_schema_lag: bool,
) -> Result<(), Attempt> {
    let server = conn.server;
    let Some(stmt) = stmts.map.get_mut(&id) else {
        let err = err_packet(
            consts::ER_UNKNOWN_STMT_HANDLER,
            format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_execute"),
        );
        return Err(Attempt::ServerError(err));
    };
    let key = conn.stmt_key(&stmt.sql);
    let backend_id = match conn.stmts.get_mut(&key) {
        Some(cached) => cached.id,
        None => {
            let mut prep = vec![Command::StmtPrepare as u8];
            prep.extend_from_slice(stmt.sql.as_bytes());
            let reply = command(conn, &prep, Expect::Prepare)
                .await
                .map_err(Attempt::Retryable)?;
            if let Some(err) = reply.error {
                if divert_schema_lag && lagless_routing::schema_lag::may_be_schema_lag(err.code) {
                    return Err(Attempt::SchemaBehind(err.code));
                }
                return Err(Attempt::ServerError(err));
            }
            let b = reply
                .packets
                .first()
                .and_then(|p| prepared::statement_id(&p.payload))
                .ok_or_else(|| {
                    Attempt::Fatal(SessionError::BackendProtocol {
                        server: conn.server_name.clone(),
                        source: lagless_protocol::ProtocolError::Malformed("prepare reply"),
                    })
                })?;
            let closed = conn.stmts.insert(key.clone(), b);
            close_statements(conn, &closed)
                .await
                .map_err(Attempt::Retryable)?;
            b
        }
    };
    for (param, data) in std::mem::take(&mut stmt.long_data) {
        let mut p = vec![Command::StmtSendLongData as u8];
        p.extend_from_slice(&backend_id.to_le_bytes());
        p.extend_from_slice(&param.to_le_bytes());
        p.extend_from_slice(&data);
        let mut framed = BytesMut::with_capacity(p.len() + 8);
        encode_packet(0, &p, &mut framed);
        conn.stream.write_all(&framed).await.map_err(|_| {
            Attempt::Retryable(SessionError::BackendLost {
                server: conn.server_name.clone(),
            })
        })?;
    }
    stmt.last = Some((server, backend_id));
    let cached = conn.stmts.get_mut(&key).expect("prepared above");
    prepared::rewrite_execute_into(payload, stmt, cached, &mut stmts.exec_buf).map_err(|e| {
        Attempt::ServerError(err_packet(
            consts::ER_NET_READ_ERROR,
            format!("Malformed COM_STMT_EXECUTE: {e}"),
        ))
    })?;
    if prepared::opens_cursor(payload) {
        stmts.cursor_opened = true;
    }
    Ok(())
}

/// Sends COM_STMT_CLOSE (no response) for these server statement ids on `conn`.
pub(crate) async fn close_statements(
    conn: &mut crate::backends::BackendConn,
    ids: &[u32],
) -> Result<(), SessionError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut framed = BytesMut::new();
    for id in ids {
        let mut p = [Command::StmtClose as u8, 0, 0, 0, 0];
        p[1..].copy_from_slice(&id.to_le_bytes());
        encode_packet(0, &p, &mut framed);
    }
    conn.stream
        .write_all(&framed)
        .await
        .map_err(|_| SessionError::BackendLost {
            server: conn.server_name.clone(),
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
