//! [`switchover`]: a planned change of primary with zero lost writes.

use std::fmt;
use std::time::Duration;

use lagless_backend::QueryResult;
use lagless_routing::gtid::MariaPos;
use tokio::time::Instant;

use crate::types::ServerObservation;

use super::conn::Ctl;
use super::error::{FailoverError, StepError};
use super::events::{write_events, Event, Recorder, Step};
use super::execute::{promote, rejoin_with, repoint_all, RejoinOutcome, RepointOutcome};
use super::{quote_str, FailoverOptions, Member};

/// What [`switchover`] did.
#[derive(Debug, Clone)]
pub struct SwitchoverReport {
    pub new_primary: String,
    pub old_primary: String,
    /// From sending `read_only = 1` to the old primary until the new primary answered
    /// `read_only = 0`: how long application writes were refused (or, behind the proxy, held).
    pub write_pause: Duration,
    /// The old primary's `gtid_binlog_pos` once read-only: the target applied it before it was
    /// promoted.
    pub handed_over: MariaPos,
    /// The old primary as a replica of the new one (or quarantined, if something wrote to it
    /// after it became read-only, e.g. an account with SUPER).
    pub old_primary_outcome: Result<RejoinOutcome, String>,
    /// The other reachable replicas.
    pub repointed: Vec<RepointOutcome>,
    pub total: Duration,
    pub events: Vec<Event>,
}

impl fmt::Display for SwitchoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "switchover {} -> {}: writes paused {:.1?}, done after {:.1?}, handed over at {}",
            self.old_primary, self.new_primary, self.write_pause, self.total, self.handed_over
        )?;
        writeln!(f, "old primary: {:?}", self.old_primary_outcome)?;
        for r in &self.repointed {
            match &r.error {
                None => writeln!(f, "repointed {}", r.name)?,
                Some(e) => writeln!(f, "NOT repointed {}: {e}", r.name)?,
            }
        }
        write_events(f, &self.events)
    }
}

/// Makes `target` (a replica of `current`, reachable and replicating in `servers`, normally the
/// latest snapshot) the primary, with no transaction lost:
///
/// 1. connect to both (before anything changes, to keep the pause short);
/// 2. `SET GLOBAL read_only = 1` on `current`: from here application writes are refused (the
///    proxy holds them; not this function's part);
/// 3. read `current`'s `gtid_binlog_pos`, now final;
/// 4. `MASTER_GTID_WAIT` on `target` until it applied that, at most
///    [`FailoverOptions::catch_up_timeout`]; **if it does not catch up, the switchover is
///    abandoned**: `current` is made writable again and an error returned;
/// 5. promote `target` (`STOP SLAVE`, `RESET SLAVE ALL`, `read_only = 0`): the write pause
///    ends;
/// 6. concurrently: repoint the other reachable replicas of `servers`, and make `current` a
///    replica of `target` (as [`rejoin`](super::rejoin) does, including its history check).
///
/// # Errors
///
/// A failed step up to the promotion. After a failure at step 4 or 5 `current` is made
/// writable again when possible (a failure inside step 5 may leave `target` not replicating;
/// [`FailoverError::events`] says which statements ran). Failures after the promotion are in
/// the report.
pub async fn switchover(
    servers: &[ServerObservation],
    current: &str,
    target: &str,
    opts: &FailoverOptions,
) -> Result<SwitchoverReport, FailoverError> {
    let mut rec = Recorder::new();
    match run(servers, current, target, opts, &mut rec).await {
        Ok(mut report) => {
            report.total = rec.elapsed();
            report.events = rec.into_events();
            Ok(report)
        }
        Err(e) => Err(e.with_events(rec.into_events())),
    }
}

async fn run(
    servers: &[ServerObservation],
    current: &str,
    target: &str,
    opts: &FailoverOptions,
    rec: &mut Recorder,
) -> Result<SwitchoverReport, FailoverError> {
    let find = |name: &str| {
        servers.iter().find(|o| o.name == name).ok_or_else(|| {
            FailoverError::new(
                name,
                Step::CheckPromoted,
                StepError::Refused(format!("{name} is not among the servers")),
            )
        })
    };
    let (old, new) = (find(current)?, find(target)?);
    if !new.reachable || new.replication.is_none() {
        return Err(FailoverError::new(
            target,
            Step::CheckPromoted,
            StepError::Refused(format!("{target} is not a reachable replica")),
        ));
    }
    let (old, new) = (Member::from(old), Member::from(new));
    let mut o = Ctl::connect(&old, opts, rec).await?;
    let mut t = Ctl::connect(&new, opts, rec).await?;

    let paused_at = Instant::now();
    o.exec(rec, Step::SetReadOnly, "SET GLOBAL read_only = 1")
        .await?;
    let promoted = async {
        let [handed_over] = o.positions(rec, ["gtid_binlog_pos"]).await?;
        let secs = opts.catch_up_timeout.as_secs_f64();
        let sql = format!(
            "SELECT MASTER_GTID_WAIT({}, {secs:.3})",
            quote_str(&handed_over.to_string())
        );
        let bound = opts.catch_up_timeout + opts.statement_timeout;
        let r = t
            .run_within(rec, Step::WaitCaughtUp, &sql, None, bound)
            .await?;
        let reached = matches!(&r, QueryResult::Rows(rows) if rows.scalar() == Some("0"));
        if !reached {
            return Err(FailoverError::new(
                &new.name,
                Step::WaitCaughtUp,
                StepError::Refused(format!(
                    "did not apply {handed_over} within {:?}; switchover abandoned",
                    opts.catch_up_timeout
                )),
            ));
        }
        promote(&mut t, &new, rec, opts).await?;
        Ok(handed_over)
    }
    .await;
    let handed_over = match promoted {
        Ok(pos) => pos,
        Err(e) => {
            // Undo: the old primary takes writes again. Only safe because the target did not
            // become writable (its read_only=0 is the last step of promote()).
            let undo = o
                .exec(rec, Step::SetWritable, "SET GLOBAL read_only = 0")
                .await;
            if let Err(u) = undo {
                tracing::error!(error = %u, "switchover: the old primary could not be made writable again");
            }
            return Err(e);
        }
    };
    let write_pause = paused_at.elapsed();
    drop((o, t));

    let others: Vec<Member> = servers
        .iter()
        .filter(|s| s.name != current && s.name != target && s.reachable && s.replication.is_some())
        .map(Member::from)
        .collect();
    let mut fork = rec.fork();
    let (old_primary_outcome, repointed) = tokio::join!(
        async {
            rejoin_with(&old, &new, opts, &mut fork)
                .await
                .map(|(outcome, _, _)| outcome)
                .map_err(|e| e.to_string())
        },
        repoint_all(others, &new, opts, rec)
    );
    rec.absorb(fork);
    Ok(SwitchoverReport {
        new_primary: new.name,
        old_primary: old.name,
        write_pause,
        handed_over,
        old_primary_outcome,
        repointed,
        total: Duration::ZERO,
        events: Vec::new(),
    })
}
