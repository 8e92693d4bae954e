//! Replication delay on every replica for the duration of the check, always removed after.

use anyhow::{Context, Result};
use lagless_sandbox::{LagAction, Sandbox};

/// Replicas put behind with `MASTER_DELAY`; resumed by [`LagGuard::resume`], or on drop
/// (an early return or a panic) as a best effort.
pub struct LagGuard<'a> {
    sandbox: &'a Sandbox,
    /// Replica numbers (from 1) that were delayed, or may have been half-way.
    delayed: Vec<usize>,
}

impl<'a> LagGuard<'a> {
    /// Delays every replica by `secs` (nothing for 0). A failure resumes what was done.
    pub fn inject(sandbox: &'a Sandbox, secs: u64) -> Result<LagGuard<'a>> {
        let mut guard = LagGuard {
            sandbox,
            delayed: Vec::new(),
        };
        if secs == 0 {
            return Ok(guard);
        }
        for i in 1..=sandbox.replicas().len() {
            // Recorded first: a failed CHANGE MASTER may still have stopped the replica.
            guard.delayed.push(i);
            sandbox
                .lag(i, LagAction::Delay(secs))
                .with_context(|| format!("cannot delay replica{i} by {secs} s"))?;
        }
        Ok(guard)
    }

    pub fn replicas(&self) -> usize {
        self.delayed.len()
    }

    /// Removes the delay and waits until each replica caught up; tries every replica even
    /// when one fails, and reports the first failure.
    pub fn resume(mut self) -> Result<()> {
        self.resume_all()
    }

    fn resume_all(&mut self) -> Result<()> {
        let mut first = None;
        for i in std::mem::take(&mut self.delayed) {
            if let Err(e) = self.sandbox.lag(i, LagAction::Resume) {
                first.get_or_insert(e.context(format!(
                    "cannot remove the lag of replica{i}: run `lagless sandbox lag --replica {i} --resume`"
                )));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for LagGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.resume_all() {
            eprintln!("lagless check-staleness: {e:#}");
        }
    }
}
