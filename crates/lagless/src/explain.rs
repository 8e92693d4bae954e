//! `lagless explain "SQL"`: where a statement would go, and why, without running it.

use lagless_config::Config;
use lagless_routing::balance::Draw;
use lagless_routing::{route, ClusterView, RouteInput, SessionRouting};
use lagless_sql::{classify, LexOptions};

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The statement.
    sql: String,
    /// Explain it as if inside a read-write transaction.
    #[arg(long)]
    in_transaction: bool,
    /// The session's user (for per-user routes and rules).
    #[arg(long, default_value = "app")]
    user: String,
    /// The session's current schema (for rules).
    #[arg(long)]
    schema: Option<String>,
    /// Print one JSON object: {"class", "target", "server", "reason"}.
    #[arg(long)]
    json: bool,
}

/// The configuration explained against when no --config is given: the demo's shape.
const DEFAULT_CONFIG: &str = r#"
[[users]]
name = "app"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
[[clusters]]
name = "sandbox"
user = "app"
[[clusters.servers]]
name = "primary"
address = "127.0.0.1:3310"
role = "primary"
[[clusters.servers]]
name = "replica1"
address = "127.0.0.1:3311"
role = "replica"
[[clusters.servers]]
name = "replica2"
address = "127.0.0.1:3312"
role = "replica"
"#;

pub fn run(args: &ExplainArgs, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = match config {
        Some(path) => lagless_config::load(path)?,
        None => lagless_config::from_toml_str(DEFAULT_CONFIG)?,
    };
    let e = explain(&config, args);
    if args.json {
        println!("{}", serde_json::to_string(&e)?);
    } else {
        println!(
            "class:  {}\ntarget: {} ({})\nreason: {}",
            e.class, e.target, e.server, e.reason
        );
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Explanation {
    class: String,
    target: String,
    server: String,
    reason: String,
}

fn explain(config: &Config, args: &ExplainArgs) -> Explanation {
    let view = ClusterView::from_config(config);
    let user = config.user(&args.user);
    let cluster = config
        .clusters
        .iter()
        .position(|c| user.is_some_and(|u| u.cluster == c.name))
        .unwrap_or(0);
    let primary_only = user.is_some_and(|u| u.route == lagless_config::UserRoute::Primary);
    let mut session = SessionRouting::new(
        cluster,
        view.clusters.len(),
        &args.user,
        args.schema.clone(),
        primary_only,
    );
    session.consistency = user
        .and_then(|u| u.consistency)
        .unwrap_or(config.consistency.default);
    if args.in_transaction {
        session.trx.active = true;
        session.trx.server = Some(view.primary(cluster));
    }
    let c = classify(&args.sql, &LexOptions::default());
    let global = lagless_routing::gtid::MariaPos::default();
    let plan = route(&RouteInput {
        stmt: &c,
        session: &session,
        view: &view,
        config,
        draw: Draw {
            entropy: 0,
            turn: 0,
        },
        global: &global,
        now_ms: 0,
    });
    Explanation {
        class: c.class.to_string(),
        target: plan.target_label(&view, cluster),
        server: config.clusters[plan.server.cluster].servers[plan.server.server]
            .name
            .clone(),
        reason: plan.reason.to_string(),
    }
}
