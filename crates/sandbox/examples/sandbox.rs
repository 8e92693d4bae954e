//! The `lagless sandbox` subcommands without the proxy binary:
//! `cargo run -p lagless-sandbox --example sandbox -- up --dir /tmp/sb --base-port 3410`.

use clap::Parser;
use lagless_sandbox::cli::{run, SandboxCommand};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: SandboxCommand,
}

fn main() -> anyhow::Result<()> {
    run(Args::parse().cmd)
}
