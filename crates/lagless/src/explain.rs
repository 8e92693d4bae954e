//! `lagless explain "SQL"`: where a statement would go, and why, without running it.

use lagless_config::Config;
use lagless_routing::ClusterView;

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

fn explain(config: &Config, args: &ExplainArgs) -> lagless_admin::explain::Explanation {
    let req = lagless_admin::explain::ExplainRequest {
        sql: args.sql.clone(),
        in_transaction: args.in_transaction,
        user: args.user.clone(),
        schema: args.schema.clone(),
    };
    lagless_admin::explain::explain(config, &ClusterView::from_config(config), &req, 0)
}
