//! [`with_failover_lock`]: keeping several proxies from failing over at the same moment.
//!
//! Each proxy monitors the servers itself and may decide, within the same few hundred
//! milliseconds as the others, that the primary failed. Before acting, a proxy takes a named
//! lock, `SELECT GET_LOCK('lagless_failover', 0)`, on the servers themselves (no coordination
//! service), and keeps those connections open while it acts. With [`LockScope::Majority`]
//! (the default) it must hold the lock on a **majority of the cluster's servers other than the
//! failed primary**, taken in name order; two proxies cannot both hold a majority of the same
//! servers, so at most one acts, even when they chose different candidates (they saw
//! different positions) or see different servers (a partition: the side that reaches only a
//! minority does not fail over). This is the scheme of MaxScale's
//! `cooperative_monitoring_locks = majority_of_all`, minus the failed primary, which no proxy
//! can lock; a 2-server cluster (primary and standby) therefore still fails over.
//!
//! A proxy that finds a lock held by another connection releases what it holds and polls the
//! servers until it sees a promoted primary (reachable, writable, replicating from nobody, not
//! the old primary), then does nothing. The winner, too, looks for a promoted primary once it
//! holds the locks, so a proxy that arrives after the failover does not fail over again.
//!
//! **Limits**:
//! - The locks live in the servers' memory and in the winner's connections: if the winner
//!   dies mid-failover, they are released, and a loser that then takes them finds the
//!   candidate half promoted (its failover then fails, or promotes it again, which is
//!   harmless).
//! - A loser that sees no promoted primary within [`FailoverOptions::lock_wait`] gives up with
//!   an error rather than act while the winner might still be working.
//! - Majority costs availability: with 3 servers, the primary and one replica down, no proxy
//!   fails over (1 of 2). [`LockScope::Candidate`] (a lock on the candidate only) fails over
//!   then, and is safe only with a single proxy doing failover, or proxies that always choose
//!   the same candidate.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{sleep, Instant};

use crate::parse::parse_slave_status;

use super::conn::Ctl;
use super::error::{FailoverError, StepError};
use super::events::{Outcome, Recorder, Step};
use super::{FailoverOptions, LockScope, Member};

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
    let (mut voters, need) = voters(servers, old_primary, candidate, opts.lock_scope);
    let mut roles = Roles::new(servers, old_primary);
    let deadline = Instant::now() + opts.lock_wait;
    let started = Instant::now();
    loop {
        let (mut held, contested) = acquire(&mut voters, opts, rec).await;
        if contested.is_none() && held.len() >= need {
            if let Some(primary) = roles.promoted(opts).await {
                release(&mut held, rec).await;
                return Ok(Locked::AlreadyPromoted { primary });
            }
            let names: Vec<&str> = held.iter().map(|c| c.server.as_str()).collect();
            let note = format!("held on {} (of {} needed)", names.join(", "), need);
            rec.record(
                &candidate.name,
                Step::Lock,
                Some(note),
                started,
                Outcome::Done,
            );
            let out = act().await;
            release(&mut held, rec).await;
            return Ok(Locked::Ran(out));
        }
        release(&mut held, rec).await;
        if let Some(primary) = roles.promoted(opts).await {
            return Ok(Locked::AlreadyPromoted { primary });
        }
        if Instant::now() >= deadline {
            let why = match contested {
                Some(server) => format!(
                    "{LOCK_NAME} is held by another connection on {server} and no promoted \
                     primary appeared within {:?}",
                    opts.lock_wait
                ),
                None => format!(
                    "{LOCK_NAME}: only {} of the {} servers needed could be locked (the others \
                     are unreachable) within {:?}",
                    held.len(),
                    need,
                    opts.lock_wait
                ),
            };
            return Err(FailoverError::new(
                &candidate.name,
                Step::Lock,
                StepError::Refused(why),
            ));
        }
        sleep(POLL).await;
    }
}

/// Which servers are locked, in the order every proxy uses (by name), and how many of them
/// must be held.
fn voters<'a>(
    servers: &'a [Member],
    old_primary: &str,
    candidate: &'a Member,
    scope: LockScope,
) -> (Vec<Voter<'a>>, usize) {
    match scope {
        LockScope::Candidate => (vec![Voter::new(candidate)], 1),
        LockScope::Majority => {
            let mut v: Vec<Voter<'a>> = servers
                .iter()
                .filter(|m| m.name != old_primary)
                .map(Voter::new)
                .collect();
            if !v.iter().any(|x| x.member.name == candidate.name) {
                v.push(Voter::new(candidate));
            }
            v.sort_by(|a, b| a.member.name.cmp(&b.member.name));
            let need = v.len() / 2 + 1;
            (v, need)
        }
    }
}

/// One server to lock, with its connection once made.
struct Voter<'a> {
    member: &'a Member,
    conn: Option<Ctl>,
}

impl<'a> Voter<'a> {
    fn new(member: &'a Member) -> Self {
        Voter { member, conn: None }
    }
}

/// Connects to the voters not connected yet (concurrently: an unreachable one costs one
/// connect timeout, not one each), then `GET_LOCK`s them in order. Stops at the first lock
/// another connection holds and names that server. The held locks' connections are moved
/// out of `voters` (the others stay for the next try).
async fn acquire(
    voters: &mut [Voter<'_>],
    opts: &FailoverOptions,
    rec: &mut Recorder,
) -> (Vec<Ctl>, Option<String>) {
    let mut connecting = JoinSet::new();
    for (i, v) in voters.iter().enumerate().filter(|(_, v)| v.conn.is_none()) {
        let (member, opts, mut fork) = (v.member.clone(), opts.clone(), rec.fork());
        connecting.spawn(async move {
            let c = Ctl::connect(&member, &opts, &mut fork).await.ok();
            (i, c, fork)
        });
    }
    while let Some(joined) = connecting.join_next().await {
        if let Ok((i, c, fork)) = joined {
            voters[i].conn = c;
            rec.absorb(fork);
        }
    }
    let sql = format!("SELECT GET_LOCK('{LOCK_NAME}', 0)");
    let mut held = Vec::new();
    for v in voters.iter_mut() {
        let Some(mut c) = v.conn.take() else { continue };
        match c.rows(rec, Step::Lock, &sql).await {
            Ok(r) if r.scalar() == Some("1") => held.push(c),
            Ok(_) => {
                v.conn = Some(c);
                return (held, Some(v.member.name.clone()));
            }
            // Lost or timed out: this server does not count (reconnected next time).
            Err(_) => {}
        }
    }
    (held, None)
}

/// Releases the locks and closes their connections (closing alone would release them too).
async fn release(held: &mut Vec<Ctl>, rec: &mut Recorder) {
    let sql = format!("SELECT RELEASE_LOCK('{LOCK_NAME}')");
    for mut c in held.drain(..) {
        if let Err(e) = c.rows(rec, Step::Lock, &sql).await {
            tracing::debug!(error = %e, "RELEASE_LOCK failed");
        }
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
