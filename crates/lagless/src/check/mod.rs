//! `lagless check-staleness`: measures stale reads through a running Lagless, per consistency
//! mode, with replication lag injected on the sandbox's replicas.
//!
//! For each mode, W writer sessions update their own row of `lagless_check` with a strictly
//! increasing value and read it back at once, in three variants: A on the writer's connection,
//! B on another connection after `SET @lagless_token` to the writer's `SELECT @lagless_token`,
//! C on another connection without a token. A read is stale when it returns less than what was
//! just written. With `--later-reads N`, after each variant-A pair the writer's own session
//! also reads its row N times once more than `--later-gap-ms` (10) have passed since its write
//! was acknowledged: the replica share of those reads, of the reads right after the write (A)
//! and of the background readers' (sessions that never write) is reported apart. R background
//! sessions add random point reads. Where each read ran comes from `@@server_id` in the same
//! statement (the primary's id is read from the sandbox manifest).
//!
//! The mode `direct` (first in a default run) is not the proxy's: it runs the same workload
//! straight on the sandbox primary, as the manifest's application user, without a token in
//! variant B. It is the baseline of the report's "p99 over direct": what the proxy added to
//! each variant's read latency on the same machine in the same run.
//!
//! Entry point: [`run`], `fn(&CheckArgs) -> anyhow::Result<()>`. It prints the report (a
//! Markdown table, or one JSON document with `--json`) to stdout and progress to stderr, then
//! returns `Ok(())` when every promise held, or an error whose message lists the failures: a
//! stale read where the mode promises read-your-writes, a mode the proxy refused, failed
//! statements, Ctrl-C, or lag that could not be removed. The error's root is a [`CheckFailed`]
//! when the report was printed, so a caller can tell it from a run that could not start.
//!
//! Parts: [`args`] (command line), [`mode`] (modes and their promises), [`conn`] (timed
//! mysql_async connections), [`prepare`] (the table), [`lag`] (injecting and removing lag),
//! [`workload`] (writers and readers), [`stats`] (counting), [`report`] (table, JSON, verdict).

mod args;
mod conn;
mod lag;
mod mode;
mod prepare;
mod report;
mod stats;
mod workload;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use lagless_sandbox::{Role, Sandbox, ServerEntry};
use tokio_util::sync::CancellationToken;

pub use args::CheckArgs;

use conn::Endpoint;
use lag::LagGuard;
use report::{Header, Report};
use workload::Plan;

/// The check's table, in `--database`.
const TABLE: &str = "lagless_check";

/// The check ran and found what the message says (the report is already printed).
#[derive(Debug)]
pub struct CheckFailed(pub String);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}

pub fn run(args: &CheckArgs) -> Result<()> {
    args.validate()?;
    let sandbox = Sandbox::open(&args.dir)
        .with_context(|| format!("cannot open the sandbox in {}", args.dir.display()))?;
    let manifest = sandbox.manifest();
    let Some(primary) = manifest.servers.iter().find(|s| s.role == Role::Primary) else {
        bail!("the sandbox manifest names no primary");
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let proxy = Endpoint::parse(
        &args.proxy,
        &args.user,
        &args.password,
        &args.database,
        timeout,
    )?;
    // Straight to the replicas, as the sandbox's application user, to see the table arrive.
    // The primary too, for the `direct` baseline.
    let direct = |s: &ServerEntry| Endpoint {
        host: s.host.clone(),
        port: s.port,
        user: manifest.users.app.user.clone(),
        password: manifest.users.app.password.clone(),
        database: args.database.clone(),
        timeout,
    };
    let replicas: Vec<Endpoint> = manifest
        .servers
        .iter()
        .filter(|s| s.role == Role::Replica)
        .map(direct)
        .collect();
    let plan = Plan {
        proxy,
        primary: direct(primary),
        primary_id: u64::from(primary.server_id),
        writers: args.writers,
        readers: args.readers,
        pairs: args.pairs,
        duration: Duration::from_secs(args.duration),
        later_reads: args.later_reads,
        later_gap: Duration::from_millis(args.later_gap_ms),
    };
    let modes = args.modes();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let cancel = CancellationToken::new();
    // Listening from the start also keeps Ctrl-C from killing the process between the lag's
    // injection and its removal (the runtime's workers run this task outside block_on too).
    rt.spawn(interrupt(cancel.clone()));

    eprintln!("preparing {TABLE} through {}", plan.proxy.addr());
    rt.block_on(prepare::prepare(&plan.proxy, &replicas, args.writers))?;
    if args.lag > 0 {
        eprintln!(
            "delaying {} replicas by {} s (MASTER_DELAY)",
            replicas.len(),
            args.lag
        );
    }
    let guard = LagGuard::inject(&sandbox, args.lag)?;
    let lagged_replicas = guard.replicas();
    let outcomes = rt.block_on(async {
        let mut outcomes = Vec::new();
        for mode in modes {
            if cancel.is_cancelled() {
                break;
            }
            if mode.is_direct() {
                eprintln!(
                    "checking direct (straight on the primary {})",
                    plan.primary.addr()
                );
            } else {
                eprintln!("checking {mode}");
            }
            let out = workload::run_mode(&plan, mode, &cancel).await;
            outcomes.push((mode, out));
        }
        outcomes
    });
    if lagged_replicas > 0 {
        eprintln!("removing the lag");
    }
    let lag_error = guard.resume().err().map(|e| format!("{e:#}"));

    let report = Report::new(
        Header {
            proxy: args.proxy.clone(),
            sandbox: manifest.dir.clone(),
            primary_server_id: plan.primary_id,
            lag_seconds: args.lag,
            lagged_replicas,
            writers: args.writers,
            readers: args.readers,
            pairs_per_writer: args.pairs,
            duration_seconds: args.duration,
            later_reads_per_pair: args.later_reads,
            later_gap_ms: args.later_gap_ms,
        },
        outcomes,
        cancel.is_cancelled(),
        lag_error,
    );
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    // Don't wait for connections still closing in the background.
    rt.shutdown_timeout(Duration::from_secs(1));
    let failures = report.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(format!("check-staleness failed: {}", failures.join("; "))).into())
    }
}

/// First Ctrl-C: stop the run, remove the lag, print what was measured. Second: exit now.
async fn interrupt(cancel: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("interrupted: stopping, then removing the lag (Ctrl-C again to exit at once)");
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("lagless check-staleness: exiting; replicas may still be delayed");
        std::process::exit(130);
    }
}
