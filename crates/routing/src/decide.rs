//! The routing decision: a pure function from (statement, session, clusters, config) to a
//! [`RoutePlan`]. The proxy executes the plan; `lagless explain` prints it.

use std::fmt;

use lagless_config::{Config, Role, RouteTo, RuleClass, RuleTarget};
use lagless_sql::{Classification, MetaKind, RoutingHint, StatementClass, TransactionKind};

use crate::balance::{choose_replica, Draw};
use crate::consistency::{Eligibility, Freshness, ReplicaCheck, WriteState};
use crate::gtid::MariaPos;
use crate::session::SessionRouting;
use crate::view::{ClusterView, ServerRef};

/// Everything a decision depends on.
pub struct RouteInput<'a> {
    pub stmt: &'a Classification<'a>,
    pub session: &'a SessionRouting,
    pub view: &'a ClusterView,
    pub config: &'a Config,
    pub draw: Draw,
    /// The newest GTIDs committed through the proxy by any session (for `global`).
    pub global: &'a MariaPos,
    /// The proxy's clock, in milliseconds.
    pub now_ms: u64,
}

/// What kind of server was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Primary,
    Replica,
    /// One server named by a hint or rule.
    Backend,
}

/// Why a statement goes where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A read, on the session's replica.
    Read,
    /// The statement's class needs the primary (write, locking read, session state, ...).
    Class(&'static str),
    /// Inside a read-write transaction: everything stays where it runs.
    Transaction,
    /// A READ ONLY transaction: one replica for all of it.
    ReadOnlyTransaction,
    /// A read-write transaction started optimistically on a replica, or a statement of one
    /// that a replica can run.
    OptimisticTransaction,
    /// The first statement of an optimistic transaction that a replica cannot run: the
    /// transaction moves to the primary, its statements replayed there first.
    OptimisticMoved(&'static str),
    /// autocommit is off: this statement opens a transaction.
    AutocommitOff,
    /// SET TRANSACTION ran on the primary for the next transaction.
    NextTransactionCharacteristics,
    /// Session state that only the primary connection has.
    Pinned(String),
    /// The user's configured route is "primary".
    UserRoute,
    /// A routing hint in the statement's first comment.
    Hint(&'static str),
    /// A configured rule.
    Rule(String),
    /// SHOW WARNINGS & co describe the previous statement: same server.
    Diagnostics,
    /// CALL, routed by `routing.call`.
    Call,
    /// No healthy replica: the read goes to the primary.
    NoReplicaAvailable,
    /// The session's consistency mode sends its reads to the primary now.
    ConsistencyPrimary(String),
    /// No replica is known to be fresh enough for the session's consistency mode.
    ReplicasBehind(String),
    /// The replica answered the read with this error, which may mean that it has not applied
    /// a schema change yet (see [`crate::schema_lag`]): the read runs again on the primary.
    ReplicaLacksSchema(u16),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Read => f.write_str("read: the session's replica"),
            Reason::Class(c) => write!(f, "{c}: primary"),
            Reason::Transaction => {
                f.write_str("inside a read-write transaction: stays on its server")
            }
            Reason::ReadOnlyTransaction => {
                f.write_str("READ ONLY transaction: one replica for all of it")
            }
            Reason::OptimisticTransaction => {
                f.write_str("optimistic transaction: on a replica until its first write")
            }
            Reason::OptimisticMoved(class) => write!(
                f,
                "{class} in an optimistic transaction: it moves to the primary, replayed"
            ),
            Reason::AutocommitOff => {
                f.write_str("autocommit is off: the statement opens a transaction")
            }
            Reason::NextTransactionCharacteristics => {
                f.write_str("SET TRANSACTION applies to the next transaction on the primary")
            }
            Reason::Pinned(why) => write!(f, "session pinned to the primary ({why})"),
            Reason::UserRoute => f.write_str("the user's route is \"primary\""),
            Reason::Hint(h) => write!(f, "hint {h}"),
            Reason::Rule(name) => write!(f, "rule \"{name}\""),
            Reason::Diagnostics => {
                f.write_str("diagnostics of the previous statement: same server")
            }
            Reason::Call => f.write_str("CALL: routing.call"),
            Reason::NoReplicaAvailable => f.write_str("read, but no healthy replica: primary"),
            Reason::ConsistencyPrimary(mode) => {
                write!(f, "consistency {mode}: read on the primary")
            }
            Reason::ReplicasBehind(mode) => {
                write!(
                    f,
                    "consistency {mode}: no replica has the session's writes yet: primary"
                )
            }
            Reason::ReplicaLacksSchema(code) => write!(
                f,
                "the replica answered error {code} (a schema change it has not applied?): primary"
            ),
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    pub server: ServerRef,
    pub kind: TargetKind,
    pub reason: Reason,
    /// The session had no usable replica in that cluster and this plan chose one: the caller
    /// should remember it ([`SessionRouting::sticky`]).
    pub new_sticky: bool,
    /// The statement carried a hint that was not followed (inside a transaction, or a write
    /// hinted to a replica).
    pub hint_ignored: bool,
    /// Before running the statement, end the read-only transaction open on this server with a
    /// COMMIT: a read-write BEGIN inside it would have committed it on a single server.
    pub commit_first: Option<ServerRef>,
    /// What must happen on the replica before the read (consistency check, wait or hold); if it
    /// fails the read goes to the primary.
    pub check: ReplicaCheck,
    /// Move the optimistic transaction open on this replica to the primary (roll it back there,
    /// replay it on the primary) before running the statement.
    pub move_from: Option<ServerRef>,
}

impl RoutePlan {
    /// The stable label used by `lagless explain --json`: "primary", "replica",
    /// "cluster:NAME" or "backend:NAME".
    pub fn target_label(&self, view: &ClusterView, home_cluster: usize) -> String {
        let cluster = &view.clusters[self.server.cluster];
        match self.kind {
            TargetKind::Backend => format!("backend:{}", cluster.servers[self.server.server].name),
            _ if self.server.cluster != home_cluster => format!("cluster:{}", cluster.name),
            TargetKind::Primary => "primary".into(),
            TargetKind::Replica => "replica".into(),
        }
    }
}

/// Can a replica answer this statement, judged on the statement alone?
pub fn replica_safe(c: &Classification<'_>) -> bool {
    c.class.replica_safe() && !c.uses_user_variables && !c.primary_only_functions
}

/// Decides where one statement runs.
pub fn route(input: &RouteInput<'_>) -> RoutePlan {
    let RouteInput {
        stmt: c,
        session: s,
        view,
        config,
        draw,
        global,
        now_ms,
    } = *input;
    let home = s.cluster;
    // Position modes: where the write ends in the primary's binlog, as the view knows it.
    let positioned;
    let write = if s.consistency.uses_binlog_positions() && s.write.binlog.is_none() {
        positioned = WriteState {
            binlog: view.write_position(home, &s.write).map(|(p, _)| p.clone()),
            ..s.write.clone()
        };
        &positioned
    } else {
        &s.write
    };
    let freshness = Freshness {
        mode: s.consistency,
        write,
        global,
        now_ms,
        cluster_max_lag: config.consistency.max_replica_lag,
    };
    let d = Decider {
        s,
        view,
        config,
        draw,
        hinted: c.hint.is_some(),
        freshness,
    };

    let is_begin = matches!(
        c.class,
        StatementClass::Transaction(TransactionKind::Begin { .. })
    );
    let begin_read_only = matches!(
        c.class,
        StatementClass::Transaction(TransactionKind::Begin {
            read_only: true,
            ..
        })
    );
    // A read-write BEGIN inside a READ ONLY transaction on a replica: the old transaction ends
    // there and the new one starts on the primary.
    if s.trx.active && s.trx.read_only && is_begin && !begin_read_only {
        if let Some(server) = s
            .trx
            .server
            .filter(|r| view.server(*r).role != Role::Primary)
        {
            let mut plan = d.primary(home, Reason::Class("transaction control"));
            plan.commit_first = Some(server);
            return plan;
        }
    }
    if s.trx.active && s.trx.optimistic {
        if let Some(server) = s.trx.server {
            return d.optimistic_step(c, server);
        }
    }
    // An open transaction: every statement goes where it runs.
    if s.trx.active {
        // Even on a server now marked down: the transaction lives on that connection only.
        if let Some(server) = s.trx.server {
            let reason = if s.trx.read_only {
                Reason::ReadOnlyTransaction
            } else {
                Reason::Transaction
            };
            let kind = if view.server(server).role == Role::Primary {
                TargetKind::Primary
            } else {
                TargetKind::Replica
            };
            return RoutePlan {
                server,
                kind,
                reason,
                new_sticky: false,
                hint_ignored: d.hinted,
                commit_first: None,
                check: ReplicaCheck::None,
                move_from: None,
            };
        }
    }
    if s.trx.next_on_primary && is_begin {
        return d.primary(home, Reason::NextTransactionCharacteristics);
    }
    if let Some(why) = s.pins.describe() {
        return d.primary(home, Reason::Pinned(why));
    }
    if s.primary_only {
        return d.primary(home, Reason::UserRoute);
    }
    if begin_read_only {
        return d.read(home, Reason::ReadOnlyTransaction);
    }
    let optimistic = config.routing.optimistic_transactions && !s.trx.no_optimistic_next;
    if is_begin && optimistic {
        let mut plan = d.read(home, Reason::OptimisticTransaction);
        plan.hint_ignored = d.hinted;
        return plan;
    }
    if !s.trx.autocommit
        && !matches!(
            c.class,
            StatementClass::Transaction(_) | StatementClass::Empty
        )
    {
        // With autocommit off a statement opens a transaction: a read opens an optimistic one.
        if optimistic
            && replica_safe(c)
            && !server_dependent(c.text)
            && !matches!(c.class, StatementClass::Meta(MetaKind::ShowDiagnostics))
        {
            let mut plan = d.read(home, Reason::OptimisticTransaction);
            plan.hint_ignored = d.hinted;
            return plan;
        }
        return d.primary(home, Reason::AutocommitOff);
    }
    let safe = replica_safe(c);
    match c.hint {
        Some(RoutingHint::Primary) => return d.primary(home, Reason::Hint("lagless:primary")),
        Some(RoutingHint::Replica) if safe => return d.read(home, Reason::Hint("lagless:replica")),
        Some(RoutingHint::Backend(name)) => {
            if let Some(plan) = d.backend_by_name(name, safe) {
                return plan;
            }
        }
        _ => {}
    }
    if let Some(plan) = d.rules(c, safe) {
        return plan;
    }
    let mut plan = match c.class {
        StatementClass::Meta(MetaKind::ShowDiagnostics) => match s.last {
            Some(server) => d.fixed(server, TargetKind::Backend, Reason::Diagnostics),
            None => d.primary(home, Reason::Diagnostics),
        },
        _ if safe => d.read(home, Reason::Read),
        StatementClass::Call if config.routing.call == RouteTo::Replica => {
            d.read(home, Reason::Call)
        }
        StatementClass::Call => d.primary(home, Reason::Call),
        _ => d.primary(home, Reason::Class(class_name(c))),
    };
    // A hint that could not be followed is reported, not silently dropped.
    plan.hint_ignored = d.hinted && !matches!(plan.reason, Reason::Hint(_));
    plan
}

/// Does the statement's result depend on the server or the moment it runs (NOW(), RAND(),
/// UUID(), @@server_id, ...)? In an optimistic transaction such a read would give another
/// result when replayed on the primary, failing the move for certain: it runs on the primary
/// instead. A plain text scan, so a column named `now` counts too (it only costs the replica).
pub fn server_dependent(text: &str) -> bool {
    const MARKERS: [&[u8]; 13] = [
        b"@@",
        b"now(",
        b"sysdate(",
        b"curtime(",
        b"curdate(",
        b"current_",
        b"localtime",
        b"utc_",
        b"unix_timestamp(",
        b"rand(",
        b"uuid",
        b"connection_id(",
        b"sleep(",
    ];
    let text = text.as_bytes();
    (0..text.len()).any(|i| {
        MARKERS
            .iter()
            .any(|m| text.len() - i >= m.len() && text[i..i + m.len()].eq_ignore_ascii_case(m))
    })
}

fn class_name(c: &Classification<'_>) -> &'static str {
    match c.class {
        StatementClass::Write => "write",
        StatementClass::LockingRead => "locking read",
        StatementClass::ReadPrimaryOnly => "read with primary-only state or side effects",
        StatementClass::Read | StatementClass::Meta(_) if c.uses_user_variables => {
            "uses user variables"
        }
        StatementClass::Read | StatementClass::Meta(_) => "primary-only function",
        StatementClass::SessionState(_) => "session state",
        StatementClass::Transaction(_) => "transaction control",
        StatementClass::Call => "CALL",
        StatementClass::Empty => "empty statement",
        StatementClass::Unknown => "not understood (fail-safe)",
    }
}

struct Decider<'a> {
    s: &'a SessionRouting,
    view: &'a ClusterView,
    config: &'a Config,
    draw: Draw,
    hinted: bool,
    freshness: Freshness<'a>,
}

impl Decider<'_> {
    fn fixed(&self, server: ServerRef, kind: TargetKind, reason: Reason) -> RoutePlan {
        RoutePlan {
            server,
            kind,
            reason,
            new_sticky: false,
            hint_ignored: false,
            commit_first: None,
            check: ReplicaCheck::None,
            move_from: None,
        }
    }

    /// A statement inside an optimistic transaction open on `server`: what a replica can run
    /// stays there; anything else moves the transaction to the primary.
    fn optimistic_step(&self, c: &Classification<'_>, server: ServerRef) -> RoutePlan {
        let stays = match c.class {
            StatementClass::Transaction(
                TransactionKind::Commit { .. } | TransactionKind::Rollback { .. },
            )
            | StatementClass::Empty
            | StatementClass::Meta(MetaKind::ShowDiagnostics) => true,
            StatementClass::Call => false,
            _ => replica_safe(c) && !server_dependent(c.text),
        };
        if stays {
            let mut plan = self.fixed(server, TargetKind::Replica, Reason::OptimisticTransaction);
            plan.hint_ignored = self.hinted;
            return plan;
        }
        let class = if replica_safe(c) {
            "read whose result depends on the server"
        } else {
            class_name(c)
        };
        let mut plan = self.primary(server.cluster, Reason::OptimisticMoved(class));
        plan.move_from = Some(server);
        plan.hint_ignored = self.hinted;
        plan
    }

    fn primary(&self, cluster: usize, reason: Reason) -> RoutePlan {
        let mut p = self.fixed(self.view.primary(cluster), TargetKind::Primary, reason);
        p.hint_ignored = self.hinted && !matches!(p.reason, Reason::Hint(_));
        p
    }

    /// A read server in `cluster` that the session's consistency mode allows: the session's
    /// replica if it is known fresh enough, else another replica known fresh enough (routing
    /// around lag), else the session's replica after a check, else the primary.
    fn read(&self, cluster: usize, reason: Reason) -> RoutePlan {
        let mode = self.s.consistency;
        if self.freshness.primary_only() {
            return self.primary(cluster, Reason::ConsistencyPrimary(mode.to_string()));
        }
        let sticky = self
            .s
            .sticky
            .get(cluster)
            .copied()
            .flatten()
            .filter(|r| self.view.is_usable(*r));
        let (home, new_sticky) = match sticky {
            Some(r) => (Some(r), false),
            None => {
                let routing = self.config.routing;
                (
                    choose_replica(
                        self.view,
                        cluster,
                        routing.balance,
                        routing.primary_in_read_pool,
                        self.draw,
                    ),
                    true,
                )
            }
        };
        let Some(home) = home else {
            return self.primary(cluster, Reason::NoReplicaAvailable);
        };
        let verdict = |r: ServerRef| {
            if self.view.server(r).role == Role::Primary {
                return Eligibility::Yes(ReplicaCheck::None); // the primary in the read pool
            }
            self.freshness
                .eligible(self.view.server(r).replica.as_ref(), self.s.seen_on(r))
        };
        let plan = |r: ServerRef, check: ReplicaCheck, sticky_now: bool| RoutePlan {
            server: r,
            kind: TargetKind::Replica,
            reason: reason.clone(),
            new_sticky: sticky_now,
            hint_ignored: false,
            commit_first: None,
            check,
            move_from: None,
        };
        let home_verdict = verdict(home);
        if home_verdict == Eligibility::Yes(ReplicaCheck::None) {
            return plan(home, ReplicaCheck::None, new_sticky);
        }
        // Route around lag: another healthy replica already known to be fresh enough serves this
        // read; the session keeps its own replica for later reads.
        let servers = &self.view.clusters[cluster].servers;
        for (i, s) in servers.iter().enumerate() {
            let r = ServerRef { cluster, server: i };
            if i != home.server
                && s.healthy
                && s.role == Role::Replica
                && verdict(r) == Eligibility::Yes(ReplicaCheck::None)
            {
                return plan(r, ReplicaCheck::None, false);
            }
        }
        match home_verdict {
            Eligibility::Yes(check) => plan(home, check, new_sticky),
            Eligibility::No => self.primary(cluster, Reason::ReplicasBehind(mode.to_string())),
        }
    }

    fn backend_by_name(&self, name: &str, safe: bool) -> Option<RoutePlan> {
        for (ci, c) in self.view.clusters.iter().enumerate() {
            if let Some(si) = c.servers.iter().position(|s| s.name == name) {
                let r = ServerRef {
                    cluster: ci,
                    server: si,
                };
                if c.servers[si].role != Role::Primary && !safe {
                    return None; // a write hinted to a replica: ignored, reported
                }
                if !self.view.is_usable(r) {
                    return None;
                }
                return Some(self.fixed(r, TargetKind::Backend, Reason::Hint("lagless:backend")));
            }
        }
        None
    }

    fn rules(&self, c: &Classification<'_>, safe: bool) -> Option<RoutePlan> {
        for rule in &self.config.rules {
            if rule.user.as_ref().is_some_and(|u| *u != self.s.user)
                || rule
                    .schema
                    .as_ref()
                    .is_some_and(|sc| self.s.schema.as_ref() != Some(sc))
                || (rule.class == RuleClass::Read && !safe)
                || (rule.class == RuleClass::Write && safe)
                || rule
                    .table
                    .as_ref()
                    .is_some_and(|m| !c.tables().any(|t| m.matches(t.name)))
            {
                continue;
            }
            let reason = Reason::Rule(rule.name.clone());
            let home = self.s.cluster;
            return Some(match rule.target {
                RuleTarget::Primary => self.primary(home, reason),
                RuleTarget::Replica if safe => self.read(home, reason),
                // Writes never go to a replica, whatever a rule says.
                RuleTarget::Replica => self.primary(home, Reason::Class(class_name(c))),
                RuleTarget::Cluster(ci) if safe => self.read(ci, reason),
                RuleTarget::Cluster(ci) => self.primary(ci, reason),
                RuleTarget::Backend(ci, si) => {
                    let r = ServerRef {
                        cluster: ci,
                        server: si,
                    };
                    if self.view.server(r).role == Role::Primary || safe {
                        self.fixed(r, TargetKind::Backend, reason)
                    } else {
                        self.primary(ci, reason)
                    }
                }
            });
        }
        None
    }
}

#[cfg(test)]
mod tests;
