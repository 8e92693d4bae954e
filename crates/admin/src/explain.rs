//! Where a statement would be routed, and why, without running it: the logic of
//! `lagless explain` and of `GET /explain`, as one pure function.

use lagless_config::{Config, UserRoute};
use lagless_routing::balance::Draw;
use lagless_routing::gtid::MariaPos;
use lagless_routing::{route, ClusterView, RouteInput, SessionRouting};
use lagless_sql::{classify, LexOptions};
use serde::{Deserialize, Serialize};

/// What to explain: a statement and the session it would run in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    pub sql: String,
    /// As if inside a read-write transaction (opened on the primary).
    #[serde(default)]
    pub in_transaction: bool,
    /// The session's user, for per-user cluster, route, consistency and rules.
    #[serde(default = "default_user")]
    pub user: String,
    /// The session's current schema, for rules; empty means none.
    #[serde(default)]
    pub schema: Option<String>,
}

fn default_user() -> String {
    "app".into()
}

/// The answer, `{"class", "target", "server", "reason"}` (the shape of `lagless explain
/// --json`): `target` is `primary`, `replica`, `cluster:NAME` or `backend:NAME`, `server` the
/// chosen server's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub class: String,
    pub target: String,
    pub server: String,
    pub reason: String,
}

/// The decision for a fresh session of `req.user` (its configured cluster, route and
/// consistency, or the defaults for a user the configuration does not know), with no write yet
/// and nothing pinned, against `view` at `now_ms`.
///
/// The replica draw is fixed (entropy 0, turn 0) so that explaining has no effect on the
/// proxy's round-robin turn and gives the same answer twice; with several healthy replicas,
/// `server` is one a session could get, not a prediction of the next session's.
pub fn explain(
    config: &Config,
    view: &ClusterView,
    req: &ExplainRequest,
    now_ms: u64,
) -> Explanation {
    let user = config.user(&req.user);
    let cluster = config
        .clusters
        .iter()
        .position(|c| user.is_some_and(|u| u.cluster == c.name))
        .unwrap_or(0);
    let primary_only = user.is_some_and(|u| u.route == UserRoute::Primary);
    let schema = req.schema.clone().filter(|s| !s.is_empty());
    let mut session = SessionRouting::new(
        cluster,
        view.clusters.len(),
        &req.user,
        schema,
        primary_only,
    );
    session.consistency = user
        .and_then(|u| u.consistency)
        .unwrap_or(config.consistency.default);
    if req.in_transaction {
        session.trx.active = true;
        session.trx.server = Some(view.primary(cluster));
    }
    let c = classify(&req.sql, &LexOptions::default());
    let global = MariaPos::default();
    let plan = route(&RouteInput {
        stmt: &c,
        session: &session,
        view,
        config,
        draw: Draw {
            entropy: 0,
            turn: 0,
        },
        global: &global,
        now_ms,
    });
    Explanation {
        class: c.class.to_string(),
        target: plan.target_label(view, cluster),
        server: view.server(plan.server).name.clone(),
        reason: plan.reason.to_string(),
    }
}
