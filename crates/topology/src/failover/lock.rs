//! [`with_failover_lock`]: keeping several proxies from failing over at the same moment.
//!
//! Each proxy monitors the servers itself and may decide, within the same few hundred
//! milliseconds as the others, that the primary failed. Before acting, a proxy takes a named
//! lock on the candidate, `SELECT GET_LOCK('lagless_failover', 0)`, and keeps its connection
//! open while it acts. Proxies that choose from the same server state choose the same
//! candidate ([`choose_candidate`](super::choose_candidate) is deterministic and breaks ties by
//! name), so they contend for the same lock: one wins and fails over; the others do not wait
//! on the lock but poll the servers until they see a promoted primary (reachable, writable,
//! replicating from nobody, not the old primary) and then do nothing. The winner, too, looks
//! for a promoted primary once it holds the lock, so a proxy that arrives after the failover
//! does not fail over again.
//!
//! **Limits** — this is a best-effort guard, not consensus:
//! - `GET_LOCK` is per server. Proxies that disagree on the candidate (they saw different
//!   positions: the replicas were still receiving, or one proxy could not reach a replica)
//!   lock different servers and are not serialised: both may promote, and the cluster splits.
//! - The lock lives in the candidate's memory and in the winner's connection: if either dies
//!   mid-failover, the lock is gone, and a loser that then takes it finds the candidate half
//!   promoted (its failover then fails, or promotes it again, which is harmless).
//! - A loser that sees no promoted primary within [`FailoverOptions::lock_wait`] gives up with
//!   an error rather than act while the winner might still be working.
//!
//! For production, enable automatic failover on **one** proxy only (the others follow the
//! topology through their monitors), or put a coordinator with real consensus (etcd, Consul,
//! ZooKeeper) in front of the decision.

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep, Instant};

use crate::parse::parse_slave_status;

use super::conn::Ctl;
use super::error::{FailoverError, StepError};
use super::events::{Outcome, Recorder, Step};
use super::{FailoverOptions, Member};

/// The lock's name.
pub const LOCK_NAME: &str = "lagless_failover";

/// Time between two looks at the servers while another proxy holds the lock.
const POLL: Duration = Duration::from_millis(25);

/// What [`with_failover_lock`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locked<T> {
    /// This caller held the lock and ran the action, with this result.
    Ran(T),
    /// A promoted primary was found (another proxy failed over): nothing done.
    AlreadyPromoted { primary: String },
}

/// Runs `act` while holding the failover lock on `candidate`, unless a promoted primary other
/// than `old_primary` is found among `servers` (every server of the cluster). See the module
/// documentation for how several proxies behave, and the limits.
///
/// # Errors
///
/// Connecting to the candidate or `GET_LOCK` failed; or another caller held the lock and no
/// promoted primary appeared within [`FailoverOptions::lock_wait`].
pub async fn with_failover_lock<T, F, Fut>(
    servers: &[Member],
    old_primary: &str,
    candidate: &Member,
    opts: &FailoverOptions,
    act: F,
) -> Result<Locked<T>, FailoverError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    // The lock's steps go to the log (and to an error); the action has its own report.
    let mut rec = Recorder::new();
    match locked(servers, old_primary, candidate, opts, act, &mut rec).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => Err(e.with_events(rec.into_events())),
    }
}

async fn locked<T, F, Fut>(
    servers: &[Member],
    old_primary: &str,
    candidate: &Member,
    opts: &FailoverOptions,
    act: F,
    rec: &mut Recorder,
) -> Result<Locked<T>, FailoverError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    let mut lock = Ctl::connect(candidate, opts, rec).await?;
    let mut roles = Roles::new(servers, old_primary);
    let deadline = Instant::now() + opts.lock_wait;
    let started = Instant::now();
    loop {
        let got = lock
            .rows(
                rec,
                Step::Lock,
                &format!("SELECT GET_LOCK('{LOCK_NAME}', 0)"),
            )
            .await?
            .scalar()
            == Some("1");
        if got {
            if let Some(primary) = roles.promoted(opts).await {
                release(&mut lock, rec).await;
                return Ok(Locked::AlreadyPromoted { primary });
            }
            rec.record(&candidate.name, Step::Lock, None, started, Outcome::Done);
            let out = act().await;
            release(&mut lock, rec).await;
            return Ok(Locked::Ran(out));
        }
        if let Some(primary) = roles.promoted(opts).await {
            return Ok(Locked::AlreadyPromoted { primary });
        }
        if Instant::now() >= deadline {
            return Err(FailoverError::new(
                &candidate.name,
                Step::Lock,
                StepError::Refused(format!(
                    "{LOCK_NAME} is held by another connection and no promoted primary \
                     appeared within {:?}",
                    opts.lock_wait
                )),
            ));
        }
        sleep(POLL).await;
    }
}

async fn release(lock: &mut Ctl, rec: &mut Recorder) {
    let sql = format!("SELECT RELEASE_LOCK('{LOCK_NAME}')");
    if let Err(e) = lock.rows(rec, Step::Lock, &sql).await {
        // Closing the connection (on drop) releases it anyway.
        tracing::debug!(error = %e, "RELEASE_LOCK failed");
    }
}

/// Looks at the servers' roles, keeping one connection to each between looks.
struct Roles<'a> {
    servers: Vec<(&'a Member, Option<Ctl>)>,
}

impl<'a> Roles<'a> {
    fn new(servers: &'a [Member], old_primary: &str) -> Self {
        Roles {
            servers: servers
                .iter()
                .filter(|m| m.name != old_primary)
                .map(|m| (m, None))
                .collect(),
        }
    }

    /// The first server that answers as a primary: `read_only = 0`, no replication.
    async fn promoted(&mut self, opts: &FailoverOptions) -> Option<String> {
        for (member, conn) in &mut self.servers {
            if conn.is_none() {
                *conn = Ctl::connect(member, opts, &mut Recorder::new()).await.ok();
            }
            let Some(c) = conn else { continue };
            match is_primary(c).await {
                Ok(true) => {
                    tracing::info!(server = %member.name, "failover lock: found a promoted primary");
                    return Some(member.name.clone());
                }
                Ok(false) => {}
                Err(_) => *conn = None,
            }
        }
        None
    }
}

async fn is_primary(c: &mut Ctl) -> Result<bool, StepError> {
    let ro = c.rows_quiet("SELECT @@read_only").await?;
    if ro.scalar() != Some("0") {
        return Ok(false);
    }
    let st = c.rows_quiet("SHOW ALL SLAVES STATUS").await?;
    Ok(parse_slave_status(&st).is_none())
}
