//! The `lagless` binary: command line, configuration loading, signals, and wiring of the parts.
//!
//! Subcommands: `run` (the default with `--config`), `demo` (the default without), `sandbox`,
//! `passwd`, `explain`, `check-staleness`, `switchover`.

mod check;
mod demo;
mod explain;
mod passwd;
mod run;
mod switchover;
mod unix_socket;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Lagless: a read/write-splitting proxy for MySQL and MariaDB replication.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Without it and without a subcommand, `lagless demo` runs.
    #[arg(long, global = true, env = "LAGLESS_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter, e.g. `info` or `lagless_proxy=debug` (RUST_LOG syntax).
    #[arg(long, global = true, default_value = "info", env = "LAGLESS_LOG")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy with --config.
    Run,
    /// Start a local sandbox (1 primary + 2 replicas) and the proxy in front of it.
    Demo(demo::DemoArgs),
    /// Manage local MariaDB replication sandboxes.
    #[command(subcommand)]
    Sandbox(lagless_sandbox::cli::SandboxCommand),
    /// Print the password hashes to paste into a [[users]] entry.
    Passwd(passwd::PasswdArgs),
    /// Where a statement would be routed, and why (with --config, or the demo's topology).
    Explain(explain::ExplainArgs),
    /// Measure stale reads per consistency mode under injected replica lag (defaults: `lagless demo`).
    CheckStaleness(check::CheckArgs),
    /// Planned change of primary through a running proxy's admin interface (no lost writes).
    Switchover(switchover::SwitchoverArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    let result = match cli.command {
        Some(Command::Sandbox(cmd)) => lagless_sandbox::cli::run(cmd),
        Some(Command::Passwd(args)) => passwd::run(&args),
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::Explain(args)) => explain::run(&args, cli.config.as_deref()),
        Some(Command::CheckStaleness(args)) => check::run(&args),
        Some(Command::Switchover(args)) => switchover::run(&args),
        Some(Command::Run) | None => match &cli.config {
            Some(path) => run::run_with_config_file(path),
            None => demo::run(&demo::DemoArgs::default()),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lagless: {e:#}");
            // 64 (EX_USAGE) for a configuration the user must fix, 1 otherwise.
            if e.downcast_ref::<lagless_config::ConfigError>().is_some() {
                std::process::ExitCode::from(64)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
