//! The commands that are more than "route and relay": prepared statements, session reset,
//! COM_SET_OPTION and the statements Lagless answers itself.

use std::sync::Arc;

use bytes::BytesMut;
use lagless_protocol::consts;
use lagless_protocol::ok_err::OkPacket;
use lagless_protocol::packet::{encode_packet, Packet};
use lagless_protocol::response::Expect;
use lagless_sql::classify;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use lagless_routing::gtid::MariaPos;
use lagless_routing::{schema_lag, TargetKind};

use super::close_statements;
use super::intercept::{self, Intercepted, TextResult};
use super::prepared::{statement_id, with_id};
use super::{Engine, Flow, Outgoing};
use crate::error::{err_packet, SessionError};
use crate::relay::{command, relay_response};

impl Engine {
    /// COM_STMT_PREPARE: prepared where the statement would run now; the client gets Lagless's
    /// own statement id.
    pub(super) async fn prepare(&mut self, packet: &Packet) -> Result<Flow, SessionError> {
        let sql: Arc<str> = Arc::from(String::from_utf8_lossy(&packet.payload[1..]).as_ref());
        let c = classify(&sql, &self.tracked.lex);
        let mut plan = self.plan(&c);
        let (server, reply) = loop {
            self.adopt(&plan).await;
            let server = plan.server;
            let conn = match self.backends.get(&self.config, server).await {
                Ok(conn) => conn,
                Err(e) => {
                    self.send_error(1, &e).await?;
                    return Ok(Flow::Continue);
                }
            };
            let synced = self.tracked.sync(conn).await;
            // A replica that refused the session's schema may lag behind its CREATE DATABASE.
            let refused = synced
                .as_ref()
                .err()
                .and_then(SessionError::server_error_code);
            if let Some(code) = refused.filter(|&c| schema_lag::may_be_schema_lag(c)) {
                if plan.kind == TargetKind::Replica && !self.routing.trx.active {
                    plan = self.schema_lag_plan(code);
                    continue;
                }
            }
            let reply = match synced {
                Ok(()) => {
                    let name = conn.server_name.clone();
                    let prepare = command(conn, &packet.payload, Expect::Prepare);
                    match self
                        .ctx
                        .cluster
                        .until_demoted(server, &self.demotion_watch, prepare)
                        .await
                    {
                        Some(r) => r,
                        None => Err(SessionError::BackendLost { server: name }),
                    }
                }
                Err(e) => Err(e),
            };
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    self.backends.drop_conn(server);
                    self.send_error(1, &e).await?;
                    return Ok(Flow::Continue);
                }
            };
            // A replica's "no such table" may be schema lag: prepared on the primary instead.
            let lag = reply
                .error
                .as_ref()
                .map(|e| e.code)
                .filter(|&code| schema_lag::may_be_schema_lag(code));
            match lag {
                Some(code) if plan.kind == TargetKind::Replica && !self.routing.trx.active => {
                    plan = self.schema_lag_plan(code);
                }
                _ => break (server, reply),
            }
        };
        if reply.error.is_some() {
            for p in &reply.packets {
                self.client.queue(p.seq, &p.payload);
            }
            self.client.flush().await?;
            return Ok(Flow::Continue);
        }
        let first = &reply.packets[0].payload;
        let backend_id = statement_id(first).unwrap_or(0);
        let params = first
            .get(7..9)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        // The connection keeps the statement for whichever session executes it next.
        if let Some(conn) = self.backends.existing(server) {
            let key = conn.stmt_key(&sql);
            let replaced = conn.stmts.insert(key, backend_id);
            if close_statements(conn, &replaced).await.is_err() {
                self.backends.drop_conn(server);
            }
        }
        let client_id = self.stmts.add(sql, params);
        for (i, p) in reply.packets.iter().enumerate() {
            if i == 0 {
                self.client.queue(p.seq, &with_id(&p.payload, client_id));
            } else {
                self.client.queue(p.seq, &p.payload);
            }
        }
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    /// COM_STMT_EXECUTE: routed by the statement's class, like the same text as a query.
    pub(super) async fn execute_statement(
        &mut self,
        packet: &Packet,
    ) -> Result<Flow, SessionError> {
        let Some(id) = statement_id(&packet.payload) else {
            return self
                .reply_error(consts::ER_NET_READ_ERROR, "Malformed COM_STMT_EXECUTE")
                .await;
        };
        let Some(stmt) = self.stmts.map.get_mut(&id) else {
            return self.unknown_statement(id).await;
        };
        super::prepared::remember_types(&packet.payload, stmt);
        let sql = stmt.sql.clone();
        if self.trx_lost {
            let msg = "The transaction was lost with its server (failover): ROLLBACK to continue";
            return self.reply_error(consts::PROXY_TRANSACTION_LOST, msg).await;
        }
        let c = classify(&sql, &self.tracked.lex);
        self.await_write_position(&c).await;
        let plan = self.plan(&c);
        let long_data = self
            .stmts
            .map
            .get(&id)
            .is_some_and(|s| !s.long_data.is_empty());
        let flow = self
            .run(
                &c,
                plan,
                Outgoing::Execute(id, &packet.payload),
                Some(Expect::Query),
            )
            .await;
        if long_data {
            // The execution consumed its long data: the transaction it ran in (or opened)
            // cannot be replayed. (A cursor is seen when the execution is kept.)
            self.trx_unreplayable("a statement with long data sent apart ran in it");
        }
        flow
    }

    /// COM_STMT_SEND_LONG_DATA: kept until the execution, whose server is not known yet.
    pub(super) fn long_data(&mut self, packet: &Packet) -> Result<Flow, SessionError> {
        let p = &packet.payload;
        if let (Some(id), Some(param)) = (statement_id(p), p.get(5..7)) {
            if let Some(stmt) = self.stmts.map.get_mut(&id) {
                let param = u16::from_le_bytes([param[0], param[1]]);
                stmt.long_data.push((param, p[7..].to_vec()));
            }
        }
        // No response, by protocol.
        Ok(Flow::Continue)
    }

    /// COM_STMT_CLOSE (no response): the session forgets the statement; the connections it
    /// ran on keep theirs for other sessions (see `crate::stmt_cache`).
    pub(super) async fn close_statement(&mut self, packet: &Packet) -> Result<Flow, SessionError> {
        if let Some(id) = statement_id(&packet.payload) {
            self.stmts.map.remove(&id);
        }
        Ok(Flow::Continue)
    }

    /// COM_STMT_RESET: forgets the long data; with a cursor open (the session then keeps its
    /// connections), also resets the statement where it last ran. One answer to the client.
    pub(super) async fn reset_statement(&mut self, packet: &Packet) -> Result<Flow, SessionError> {
        let Some(id) = statement_id(&packet.payload) else {
            return self
                .reply_error(consts::ER_NET_READ_ERROR, "Malformed COM_STMT_RESET")
                .await;
        };
        let Some(stmt) = self.stmts.map.get_mut(&id) else {
            return self.unknown_statement(id).await;
        };
        stmt.long_data.clear();
        let target = stmt.last.filter(|_| self.stmts.cursor_opened);
        let mut error = None;
        if let Some((server, backend_id)) = target {
            if let Some(conn) = self.backends.existing(server) {
                match command(conn, &with_id(&packet.payload, backend_id), Expect::Single).await {
                    Ok(reply) => error = reply.error,
                    Err(_) => self.backends.drop_conn(server),
                }
            }
        }
        match error {
            Some(err) => self.client.queue_err(1, &err),
            None => self.client.queue_ok(
                1,
                &OkPacket {
                    status: self.status_flags(),
                    ..OkPacket::default()
                },
            ),
        };
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    /// COM_STMT_FETCH: to the connection where the statement last ran, which holds its cursor
    /// (a session that opened a cursor keeps its connections).
    pub(super) async fn fetch(&mut self, packet: &Packet) -> Result<Flow, SessionError> {
        let id = statement_id(&packet.payload).unwrap_or(0);
        let Some(stmt) = self.stmts.map.get(&id) else {
            return self.unknown_statement(id).await;
        };
        let Some((server, backend_id)) = stmt.last.filter(|_| self.stmts.cursor_opened) else {
            let msg = format!("The statement ({id}) has no open cursor.");
            return self
                .reply_error(consts::ER_STMT_HAS_NO_OPEN_CURSOR, &msg)
                .await;
        };
        let Some(conn) = self.backends.existing(server) else {
            return self
                .reply_error(
                    consts::PROXY_BACKEND_LOST,
                    "The cursor's backend connection is gone",
                )
                .await;
        };
        let mut framed = BytesMut::new();
        encode_packet(0, &with_id(&packet.payload, backend_id), &mut framed);
        if conn.stream.write_all(&framed).await.is_err() {
            self.backends.drop_conn(server);
            return self
                .reply_error(
                    consts::PROXY_BACKEND_LOST,
                    "Lost connection to backend server",
                )
                .await;
        }
        let caps = conn.capabilities;
        let Engine {
            backends,
            client,
            tracked,
            ..
        } = self;
        let conn = backends.existing(server).expect("present above");
        match relay_response(conn, client, Expect::Fetch, false, false, |ok| {
            tracked.learn(ok, caps)
        })
        .await
        {
            Ok(_) => Ok(Flow::Continue),
            Err(r) => {
                backends.drop_conn(server);
                if r.client_saw_bytes {
                    return Err(r.error);
                }
                self.send_error(1, &r.error).await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// COM_RESET_CONNECTION: the session's state is forgotten. Its backend connections are
    /// closed when they hold state a reset must discard (transaction, temporary tables, locks,
    /// user variables, prepared statements); otherwise they go back to the pool, whose next
    /// user brings them to its own variables. New or pooled connections then serve the
    /// session, with session tracking intact (a server-side reset would turn it off).
    pub(super) async fn reset_connection(
        &mut self,
        _packet: &Packet,
    ) -> Result<Flow, SessionError> {
        if self.bound_to_connections() {
            self.backends.drop_all();
        } else {
            self.backends.release(None);
        }
        let schema = self.tracked.schema.clone();
        self.reset_state(schema);
        self.trx_lost = false;
        self.client.queue_ok(
            1,
            &OkPacket {
                status: consts::SERVER_STATUS_AUTOCOMMIT,
                ..OkPacket::default()
            },
        );
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    /// COM_SET_OPTION (multi-statements on/off): applied to every open connection, and to the
    /// connections the session opens later.
    pub(super) async fn set_option(&mut self, packet: &Packet) -> Result<Flow, SessionError> {
        let on = packet.payload.get(1..3) == Some(&[0, 0]);
        let mut answer = None;
        let mut lost = Vec::new();
        for conn in self.backends.open_conns() {
            match command(conn, &packet.payload, Expect::Single).await {
                Ok(reply) => {
                    if reply.error.is_none() {
                        // Shared only with sessions that have the same option.
                        if on {
                            conn.key.capabilities |= consts::CLIENT_MULTI_STATEMENTS;
                        } else {
                            conn.key.capabilities &= !consts::CLIENT_MULTI_STATEMENTS;
                        }
                    }
                    answer.get_or_insert(reply);
                }
                Err(_) => lost.push(conn.server),
            }
        }
        for r in lost {
            self.backends.drop_conn(r);
        }
        let caps = &mut self.backends.settings.capabilities;
        if on {
            *caps |= consts::CLIENT_MULTI_STATEMENTS;
        } else {
            *caps &= !consts::CLIENT_MULTI_STATEMENTS;
        }
        match answer {
            Some(reply) => {
                for p in &reply.packets {
                    self.client.queue(p.seq, &p.payload);
                }
            }
            None => {
                self.client.queue_ok(
                    1,
                    &OkPacket {
                        header: 0xfe,
                        status: self.status_flags(),
                        ..OkPacket::default()
                    },
                );
            }
        }
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    pub(super) async fn answer_intercepted(
        &mut self,
        cmd: Intercepted<'_>,
    ) -> Result<Flow, SessionError> {
        let one = |name: &'static str, value: String| TextResult {
            columns: vec![name],
            rows: vec![vec![Some(value)]],
        };
        let result = match cmd {
            Intercepted::Backends => intercept::backends(self, Instant::now()),
            Intercepted::Replication => intercept::replication(self),
            Intercepted::Status => intercept::status(self),
            Intercepted::Explain(sql) => self.explain(sql),
            Intercepted::GetConsistency => {
                one("@lagless_consistency", self.routing.consistency.to_string())
            }
            Intercepted::GetToken => one("@lagless_token", token(&self.routing.write.gtids)),
            Intercepted::SetConsistency(mode) => {
                return match mode.parse() {
                    Ok(mode) => {
                        self.routing.consistency = mode;
                        self.reply_ok().await
                    }
                    Err(e) => {
                        let msg = format!("Variable 'lagless_consistency' can't be set to the value of '{mode}': {e}");
                        self.reply_error(consts::ER_WRONG_VALUE_FOR_VAR, &msg).await
                    }
                };
            }
            Intercepted::SetToken(text) => {
                return match parse_token(text) {
                    Some(gtids) => {
                        self.routing.require(&gtids);
                        self.reply_ok().await
                    }
                    None => {
                        let msg = format!("Variable 'lagless_token' can't be set to the value of '{text}': not a Lagless causal token");
                        self.reply_error(consts::ER_WRONG_VALUE_FOR_VAR, &msg).await
                    }
                };
            }
        };
        result.queue(&mut self.client);
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    /// `SHOW LAGLESS EXPLAIN <sql>`: the decision for this session now, without running it.
    fn explain(&self, sql: &str) -> TextResult {
        let c = classify(sql, &self.tracked.lex);
        let (plan, view) = self.decide(&c);
        let server = &self.config.clusters[plan.server.cluster].servers[plan.server.server];
        TextResult {
            columns: vec!["class", "target", "server", "reason"],
            rows: vec![vec![
                Some(c.class.to_string()),
                Some(plan.target_label(&view, self.routing.cluster)),
                Some(server.name.clone()),
                Some(plan.reason.to_string()),
            ]],
        }
    }

    fn status_flags(&self) -> u16 {
        let mut s = 0;
        if self.routing.trx.autocommit {
            s |= consts::SERVER_STATUS_AUTOCOMMIT;
        }
        if self.routing.trx.active {
            s |= consts::SERVER_STATUS_IN_TRANS;
        }
        s
    }

    pub(super) async fn reply_ok(&mut self) -> Result<Flow, SessionError> {
        self.client.queue_ok(
            1,
            &OkPacket {
                status: self.status_flags(),
                ..OkPacket::default()
            },
        );
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    async fn reply_error(
        &mut self,
        code: consts::ErrorCode,
        message: &str,
    ) -> Result<Flow, SessionError> {
        self.client.queue_err(1, &err_packet(code, message));
        self.client.flush().await?;
        Ok(Flow::Continue)
    }

    async fn unknown_statement(&mut self, id: u32) -> Result<Flow, SessionError> {
        let msg = format!("Unknown prepared statement handler ({id}) given to Lagless");
        self.reply_error(consts::ER_UNKNOWN_STMT_HANDLER, &msg)
            .await
    }
}

/// A causal token: the GTIDs a session's reads must see, opaque to clients (`gtid:` + list).
fn token(gtids: &MariaPos) -> String {
    format!("gtid:{gtids}")
}

fn parse_token(text: &str) -> Option<MariaPos> {
    text.strip_prefix("gtid:")?.parse().ok()
}
