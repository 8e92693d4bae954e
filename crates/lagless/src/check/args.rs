//! The command line of `lagless check-staleness`.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::mode::Mode;

/// Measure stale reads through a running Lagless, mode by mode, under injected replica lag.
///
/// Defaults target `lagless demo` (proxy 127.0.0.1:6033, sandbox ./lagless-sandbox).
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// Consistency mode to check, repeatable: a bare name (`gtid`, `gtid_wait`, ...) or one with
    /// its parameter (`gtid_wait(2000)`, `delay(500)`, `max_lag(2)`), or `direct`: the same
    /// workload straight on the sandbox primary, the baseline of "p99 over direct" (what the
    /// proxy added). Default: every mode, `direct` first.
    #[arg(long = "mode", value_name = "MODE")]
    pub modes: Vec<Mode>,
    /// Write/read-back pairs per writer, per variant and mode.
    #[arg(long, default_value_t = 200)]
    pub pairs: u64,
    /// Upper bound on the time spent on one mode, in seconds.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Replication delay injected on every replica (MASTER_DELAY, seconds); 0 injects nothing.
    #[arg(long, default_value_t = 1)]
    pub lag: u64,
    /// Writer sessions (each owns one row and checks its own writes).
    #[arg(long, default_value_t = 4)]
    pub writers: u32,
    /// Background reader sessions (random point reads; they never write).
    #[arg(long, default_value_t = 2)]
    pub readers: u32,
    /// After each variant-A pair, the writer's own session waits until more than
    /// --later-gap-ms have passed since its write was acknowledged, then reads its row back
    /// this many times: reads that do not follow the session's own write within that time
    /// (their replica share is reported apart from the read right after the write). 0: none.
    #[arg(long, default_value_t = 0)]
    pub later_reads: u32,
    /// The gap for --later-reads, in milliseconds: each such read starts more than this long
    /// after the session's last write was acknowledged.
    #[arg(long, default_value_t = 10)]
    pub later_gap_ms: u64,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The proxy's address.
    #[arg(long, default_value = "127.0.0.1:6033")]
    pub proxy: String,
    /// User known to the proxy.
    #[arg(long, default_value = "app")]
    pub user: String,
    #[arg(long, default_value = "lagless")]
    pub password: String,
    /// Schema that holds the check's table (`lagless_check`).
    #[arg(long, default_value = "app")]
    pub database: String,
    /// Sandbox directory (its manifest names the primary; its replicas get the lag).
    #[arg(long, default_value = "./lagless-sandbox")]
    pub dir: PathBuf,
    /// Timeout of every connection attempt and statement, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

impl CheckArgs {
    /// Refuses values that would make the run meaningless or unbounded.
    pub fn validate(&self) -> Result<()> {
        if self.pairs == 0 || self.duration == 0 {
            bail!("--pairs and --duration must be at least 1");
        }
        if !(1..=256).contains(&self.writers) {
            bail!("--writers must be between 1 and 256");
        }
        if self.readers > 256 {
            bail!("--readers must be at most 256");
        }
        if self.timeout_ms == 0 {
            bail!("--timeout-ms must be at least 1");
        }
        if self.later_reads > 100 {
            bail!("--later-reads must be at most 100");
        }
        if self.later_gap_ms > 60_000 {
            bail!("--later-gap-ms must be at most 60000");
        }
        if self.lag > 3600 {
            bail!("--lag is in seconds and at most 3600");
        }
        Ok(())
    }

    /// The modes to check, in order: the ones given, else all of them with default parameters.
    pub fn modes(&self) -> Vec<Mode> {
        if self.modes.is_empty() {
            Mode::all()
        } else {
            self.modes.clone()
        }
    }
}
