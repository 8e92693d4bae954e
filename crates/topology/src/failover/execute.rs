//! The actions' I/O: [`failover`], [`repoint`], [`fence`], [`rejoin`], and the steps they share
//! with the switchover (promote a replica, make a server a replica of another).

use std::fmt;
use std::time::Duration;

use lagless_routing::gtid::MariaPos;
use tokio::task::JoinSet;
use tokio::time::{sleep, Instant};

use crate::parse::parse_slave_status;
use crate::types::{ReplicaStatus, ServerObservation, ThreadState};

use super::candidate::Candidate;
use super::conn::{parse_pos, Ctl};
use super::error::{FailoverError, StepError};
use super::events::{write_events, Event, Outcome, Recorder, Step};
use super::history::{errant_transactions, show, unapplied, GtidRange};
use super::{quote_str, FailoverOptions, Member};

/// Bound on `STOP SLAVE`: MariaDB waits for a replication thread to stop in 2 s steps, so a
/// thread that does not exit at the first signal costs 2 s; this allows two of them.
fn stop_bound(opts: &FailoverOptions) -> Duration {
    opts.statement_timeout.max(Duration::from_secs(5))
}

/// How the wait for the candidate to apply what it received ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// It applied everything it received.
    pub caught_up: bool,
    /// What it had received when its IO thread was stopped.
    pub received: MariaPos,
    /// What it had applied when the wait ended.
    pub applied: MariaPos,
    /// Received and not applied (empty when caught up): `RESET SLAVE ALL` discarded these with
    /// the relay log, so they are lost unless the old primary comes back (its rejoin is then
    /// refused, listing them among its errant transactions).
    pub unapplied: Vec<GtidRange>,
    /// Why it did not catch up, when it did not.
    pub note: Option<String>,
    pub waited: Duration,
}

/// One replica repointed by [`failover`] or [`switchover`](super::switchover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepointOutcome {
    pub name: String,
    /// `None` when it replicates from the new primary; else why not.
    pub error: Option<String>,
}

/// What [`failover`] did.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    pub new_primary: String,
    pub address: String,
    pub apply: ApplyOutcome,
    /// The new primary's `gtid_binlog_pos` right after it became writable.
    pub gtid_binlog_pos: MariaPos,
    /// From the start of [`failover`] to the new primary's `read_only = 0`.
    pub promoted_after: Duration,
    /// The other reachable replicas, repointed to the new primary.
    pub repointed: Vec<RepointOutcome>,
    /// Servers not touched because the snapshot had them unreachable (the old primary among
    /// them): repoint the replicas among them with [`repoint`] when they are back, fence and
    /// rejoin the old primary.
    pub unreachable: Vec<String>,
    pub total: Duration,
    pub events: Vec<Event>,
}

impl fmt::Display for FailoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "failover to {} ({}): writable after {:.1?}, done after {:.1?}, gtid_binlog_pos {}",
            self.new_primary, self.address, self.promoted_after, self.total, self.gtid_binlog_pos
        )?;
        if !self.apply.caught_up {
            writeln!(
                f,
                "NOT caught up ({}); discarded: {}",
                self.apply.note.as_deref().unwrap_or(""),
                show(&self.apply.unapplied)
            )?;
        }
        for r in &self.repointed {
            match &r.error {
                None => writeln!(f, "repointed {}", r.name)?,
                Some(e) => writeln!(f, "NOT repointed {}: {e}", r.name)?,
            }
        }
        if !self.unreachable.is_empty() {
            writeln!(f, "unreachable: {}", self.unreachable.join(", "))?;
        }
        write_events(f, &self.events)
    }
}

/// What [`fence`] or [`repoint`] did.
#[derive(Debug, Clone)]
pub struct ActionReport {
    pub took: Duration,
    pub events: Vec<Event>,
}

/// What [`rejoin`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejoinOutcome {
    /// The old primary replicates from the new one.
    Rejoined,
    /// Left alone (read-only, not replicating): it holds transactions the new primary does not
    /// have (those lost by the failover, or written to it after it was cut off). Decide by
    /// hand: re-apply them on the new primary or discard them, then rebuild it.
    Quarantined { errant: Vec<GtidRange> },
}

/// What [`rejoin`] did.
#[derive(Debug, Clone)]
pub struct RejoinReport {
    pub outcome: RejoinOutcome,
    /// The old primary's `gtid_binlog_pos`.
    pub old_position: MariaPos,
    /// The new primary's `gtid_current_pos`.
    pub new_position: MariaPos,
    pub took: Duration,
    pub events: Vec<Event>,
}

/// Promotes `candidate` and repoints every other reachable replica of `servers` (the snapshot
/// the candidate was chosen from) to it.
///
/// 1. On the candidate: `STOP SLAVE IO_THREAD`, so that what it received is final (a primary
///    coming back cannot send more halfway through), then wait until `gtid_slave_pos` covers
///    `Gtid_IO_Pos` (`MASTER_GTID_WAIT`), at most [`FailoverOptions::apply_timeout`]. A SQL
///    thread stopped by hand is started first; one stopped by an error is not waited for.
///    One that did not catch up is killed before step 2 (it may wait for a lock, and then
///    `STOP SLAVE` would not return).
///    **On timeout it reports and proceeds**: the old primary is down, every second of waiting
///    is a second without a writable primary, and a replica that cannot apply its backlog in
///    time (a stopped SQL thread, a huge backlog) may never do so. What was received and not
///    applied is listed in [`ApplyOutcome::unapplied`] — `RESET SLAVE ALL` discards it with the
///    relay log. To prefer waiting over availability, raise the timeout.
/// 2. On the candidate: `STOP SLAVE`, `RESET SLAVE ALL`, (semi-sync: master side on),
///    `SET GLOBAL read_only = 0`, each a statement of its own.
/// 3. On each other reachable replica, concurrently: `STOP SLAVE`, `CHANGE MASTER TO` the
///    candidate with `MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`, `START SLAVE`, then
///    wait (at most [`FailoverOptions::verify_timeout`]) until both threads run. A replica that
///    fails is reported, not an error: the new primary is in place.
///
/// The old primary is not touched (see [`fence`], [`rejoin`]). Call it under
/// [`with_failover_lock`](super::with_failover_lock) when several proxies may fail over.
///
/// # Errors
///
/// When a step on the candidate fails (connection, statement, timeout): the failover stopped
/// there; [`FailoverError::events`] says what was done.
pub async fn failover(
    servers: &[ServerObservation],
    candidate: &Candidate,
    opts: &FailoverOptions,
) -> Result<FailoverReport, FailoverError> {
    let mut rec = Recorder::new();
    match run_failover(servers, candidate, opts, &mut rec).await {
        Ok(mut report) => {
            report.total = rec.elapsed();
            report.events = rec.into_events();
            Ok(report)
        }
        Err(e) => Err(e.with_events(rec.into_events())),
    }
}

async fn run_failover(
    servers: &[ServerObservation],
    candidate: &Candidate,
    opts: &FailoverOptions,
    rec: &mut Recorder,
) -> Result<FailoverReport, FailoverError> {
    let new_primary = candidate.member();
    let mut c = Ctl::connect(&new_primary, opts, rec).await?;
    let st = replica_status(&mut c, rec).await?;
    if st.sql_running != ThreadState::Yes
        && st.last_sql_errno == 0
        && st.io_running != ThreadState::No
    {
        // Stopped by hand, not by an error: it can apply its backlog. Started while the IO
        // thread still runs: once both threads are stopped, MariaDB (in GTID mode) discards
        // the relay log when one starts again.
        c.exec(rec, Step::StartSlave, "START SLAVE SQL_THREAD")
            .await?;
    }
    if opts.semi_sync {
        semi_sync_replica_off(&mut c, rec).await?;
    }
    kill_io_thread(&mut c, rec, opts).await?;
    c.run_within(
        rec,
        Step::StopIoThread,
        "STOP SLAVE IO_THREAD",
        None,
        stop_bound(opts),
    )
    .await?;
    let apply = wait_applied(&mut c, rec, opts).await?;
    if !apply.caught_up {
        kill_sql_thread(&mut c, rec).await?;
    }
    promote(&mut c, &new_primary, rec, opts).await?;
    let promoted_after = rec.elapsed();
    let [gtid_binlog_pos] = c.positions(rec, ["gtid_binlog_pos"]).await?;
    drop(c);

    let others: Vec<Member> = servers
        .iter()
        .filter(|o| o.name != candidate.name && o.reachable && o.replication.is_some())
        .map(Member::from)
        .collect();
    let repointed = repoint_all(others, &new_primary, opts, rec).await;
    Ok(FailoverReport {
        new_primary: new_primary.name.clone(),
        address: new_primary.address.clone(),
        apply,
        gtid_binlog_pos,
        promoted_after,
        repointed,
        unreachable: servers
            .iter()
            .filter(|o| !o.reachable)
            .map(|o| o.name.clone())
            .collect(),
        total: Duration::ZERO,
        events: Vec::new(),
    })
}

/// Step 1 of [`failover`] after the IO thread stopped.
async fn wait_applied(
    c: &mut Ctl,
    rec: &mut Recorder,
    opts: &FailoverOptions,
) -> Result<ApplyOutcome, FailoverError> {
    let st = replica_status(c, rec).await?;
    let [mut applied] = c.positions(rec, ["gtid_slave_pos"]).await?;
    let mut received = parse_pos(&st.gtid_io_pos)
        .map_err(|e| FailoverError::new(&c.server, Step::ReadPositions, e))?;
    received.merge_max(&applied);

    let started = Instant::now();
    let mut note = None;
    if !applied.contains(&received) {
        if st.sql_running == ThreadState::Yes {
            let secs = opts.apply_timeout.as_secs_f64();
            let sql = format!(
                "SELECT MASTER_GTID_WAIT({}, {secs:.3})",
                quote_str(&received.to_string())
            );
            let bound = opts.apply_timeout + opts.statement_timeout;
            let r = c
                .run_within(rec, Step::WaitApplied, &sql, None, bound)
                .await?;
            if let lagless_backend::QueryResult::Rows(rows) = r {
                if rows.scalar() != Some("0") {
                    note = Some(format!("not applied within {:?}", opts.apply_timeout));
                }
            }
        } else if st.last_sql_errno != 0 {
            note = Some(format!(
                "SQL thread stopped by error {}: {}",
                st.last_sql_errno, st.last_sql_error
            ));
        } else {
            note = Some(
                "SQL thread stopped while the IO thread was stopped too (not restarted: \
                 MariaDB would discard the relay log)"
                    .into(),
            );
        }
        [applied] = c.positions(rec, ["gtid_slave_pos"]).await?;
    }
    let caught_up = applied.contains(&received);
    if caught_up {
        note = None;
    } else {
        note.get_or_insert_with(|| "not applied".into());
    }
    let lost = if caught_up {
        Vec::new()
    } else {
        unapplied(&received, &applied)
    };
    let outcome = match &note {
        None => Outcome::Done,
        Some(n) => Outcome::Warning(format!("{n}; proceeding, discarding {}", show(&lost))),
    };
    rec.record(&c.server, Step::WaitApplied, None, started, outcome);
    Ok(ApplyOutcome {
        caught_up,
        received,
        applied,
        unapplied: lost,
        note,
        waited: started.elapsed(),
    })
}

/// The default replication connection's status; an error when there is none.
async fn replica_status(c: &mut Ctl, rec: &mut Recorder) -> Result<ReplicaStatus, FailoverError> {
    let status = c
        .rows(rec, Step::ReadPositions, "SHOW ALL SLAVES STATUS")
        .await?;
    parse_slave_status(&status).ok_or_else(|| {
        FailoverError::new(
            &c.server,
            Step::ReadPositions,
            StepError::Refused("the candidate has no replication configured".into()),
        )
    })
}

/// Kills the SQL thread (and parallel workers) of a candidate that did not catch up: it may be
/// stuck (e.g. waiting for a table lock), and `STOP SLAVE` would wait for it. Measured:
/// `STOP SLAVE` on a replica whose SQL thread waits for a metadata lock does not return.
async fn kill_sql_thread(c: &mut Ctl, rec: &mut Recorder) -> Result<(), FailoverError> {
    kill_threads(c, rec, Step::KillSqlThread, "'Slave_SQL', 'Slave_worker'")
        .await
        .map(drop)
}

/// `SET GLOBAL rpl_semi_sync_slave_enabled = OFF` and `rpl_semi_sync_slave_kill_conn_timeout
/// = 1` before a replica's IO thread is stopped. The stopping IO thread of a semi-sync replica
/// connects to its primary to kill its dump thread, which hangs on a stalled primary for the
/// kill timeout (5 s by default), and `STOP SLAVE` waits for it. Measured on MariaDB 10.11:
/// the running thread still makes that connection after `enabled = OFF` (the error log shows
/// it), so the 1 s timeout is the bound, and [`SEMI_SYNC_IO_EXIT_PAUSE`] usually cuts it short.
async fn semi_sync_replica_off(c: &mut Ctl, rec: &mut Recorder) -> Result<(), FailoverError> {
    c.exec(
        rec,
        Step::SemiSync,
        "SET GLOBAL rpl_semi_sync_slave_enabled = OFF",
    )
    .await?;
    c.exec(
        rec,
        Step::SemiSync,
        "SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = 1",
    )
    .await
}

/// How long to wait after `KILL` of a semi-sync replica's IO thread before `STOP SLAVE`.
///
/// The exiting thread first connects to its old primary to kill its dump thread there
/// (`rpl_semi_sync_slave_kill_conn_timeout`, at least 1 s, on a stalled primary), whatever
/// `rpl_semi_sync_slave_enabled` now says. `STOP SLAVE` wakes it with a signal, which cuts that
/// wait short, but only once the thread is in it; it signals again only every 2 s. Measured on
/// a SIGSTOPped semi-sync primary (`scripts/semisync-stop.sh`): `KILL` then `STOP SLAVE` at
/// once took about 1,017 ms in 3 of 5 stops; with this pause between them, 15-16 ms in 5 of 5.
///
/// Only for a thread that was connected when killed: one that is reconnecting found its primary
/// gone (after a kill -9 its kill connection is refused at once), and the pause would only add
/// to the failover (measured: +50 ms over the two replicas of the kill -9 fault test).
const SEMI_SYNC_IO_EXIT_PAUSE: Duration = Duration::from_millis(25);

/// An IO thread state (processlist `STATE`) in which it holds a connection to its primary.
/// MariaDB's states: "Waiting for master to send event", "Queueing master event to the relay
/// log", ...; while not connected: "Connecting to master", "Waiting to reconnect after a
/// failed master event read", "Reconnecting after a failed master event read".
fn connected_io_state(state: &str) -> bool {
    let s = state.to_ascii_lowercase();
    !(s.contains("reconnect") || s.contains("connecting to master") || s.is_empty())
}

/// `KILL` of the IO thread before `STOP SLAVE` (see [`kill_threads`] and
/// [`SEMI_SYNC_IO_EXIT_PAUSE`]).
async fn kill_io_thread(
    c: &mut Ctl,
    rec: &mut Recorder,
    opts: &FailoverOptions,
) -> Result<(), FailoverError> {
    let states = kill_threads(c, rec, Step::KillIoThread, "'Slave_IO'").await?;
    if opts.semi_sync && states.iter().any(|s| connected_io_state(s)) {
        sleep(SEMI_SYNC_IO_EXIT_PAUSE).await;
    }
    Ok(())
}

/// `KILL`s the server's threads whose processlist command is in `commands` (an SQL list of
/// string literals).
///
/// Used for the IO thread before `STOP SLAVE` wherever the primary may be stalled: an IO
/// thread blocked reading from a paused (SIGSTOP) or hung primary makes `STOP SLAVE` wait until
/// `slave_net_timeout` runs out (measured: 2.04 s with `slave_net_timeout = 2`), while `KILL`
/// shuts its socket down at once (measured: 20 ms, then `STOP SLAVE` 44 ms).
///
/// Returns the processlist `STATE` of each thread it killed.
async fn kill_threads(
    c: &mut Ctl,
    rec: &mut Recorder,
    step: Step,
    commands: &str,
) -> Result<Vec<String>, FailoverError> {
    let ids = c
        .rows(
            rec,
            step,
            &format!(
                "SELECT ID, STATE FROM information_schema.PROCESSLIST WHERE COMMAND IN ({commands})"
            ),
        )
        .await?;
    let mut killed = Vec::new();
    for row in &ids.rows {
        let Some(Ok(id)) = row.first().cloned().flatten().map(|v| v.parse::<u64>()) else {
            continue;
        };
        match c.exec(rec, step, &format!("KILL {id}")).await {
            // 1094: unknown thread (it ended meanwhile).
            Err(e) if matches!(&*e.cause, StepError::Query(q) if q.is_server_error()) => {}
            other => {
                other?;
                killed.push(row.get(1).cloned().flatten().unwrap_or_default());
            }
        }
    }
    Ok(killed)
}

/// `STOP SLAVE; RESET SLAVE ALL; [semi-sync master on]; SET GLOBAL read_only = 0`, then
/// [`FailoverOptions::on_promoted`].
pub(crate) async fn promote(
    c: &mut Ctl,
    member: &Member,
    rec: &mut Recorder,
    opts: &FailoverOptions,
) -> Result<(), FailoverError> {
    c.exec(rec, Step::StopSlave, "STOP SLAVE").await?;
    c.exec(rec, Step::ResetSlaveAll, "RESET SLAVE ALL").await?;
    if opts.semi_sync {
        c.exec(
            rec,
            Step::SemiSync,
            "SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC",
        )
        .await?;
        c.exec(
            rec,
            Step::SemiSync,
            "SET GLOBAL rpl_semi_sync_master_enabled = ON",
        )
        .await?;
    }
    c.exec(rec, Step::SetWritable, "SET GLOBAL read_only = 0")
        .await?;
    if let Some(hook) = &opts.on_promoted {
        hook(member);
    }
    Ok(())
}

/// Repoints `replicas` to `primary`, concurrently; their events go into `rec`.
pub(crate) async fn repoint_all(
    replicas: Vec<Member>,
    primary: &Member,
    opts: &FailoverOptions,
    rec: &mut Recorder,
) -> Vec<RepointOutcome> {
    let mut tasks = JoinSet::new();
    for (i, replica) in replicas.iter().enumerate() {
        let (replica, primary, opts) = (replica.clone(), primary.clone(), opts.clone());
        let mut fork = rec.fork();
        tasks.spawn(async move {
            let result = repoint_with(&replica, &primary, &opts, &mut fork).await;
            (i, result.err().map(|e| e.to_string()), fork)
        });
    }
    let mut outcomes: Vec<RepointOutcome> = replicas
        .iter()
        .map(|r| RepointOutcome {
            name: r.name.clone(),
            error: Some("the repointing task ended abnormally".into()),
        })
        .collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, error, fork)) = joined {
            outcomes[i].error = error;
            rec.absorb(fork);
        }
    }
    outcomes
}

/// Makes `replica` replicate from `primary`: `STOP SLAVE`, `CHANGE MASTER TO ...
/// MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`, `START SLAVE`, then waits until both
/// threads run. For a replica that was unreachable during a [`failover`].
///
/// # Errors
///
/// A failed step, or threads not running within [`FailoverOptions::verify_timeout`] (e.g.
/// error 1236: it has transactions the new primary lacks).
pub async fn repoint(
    replica: &Member,
    primary: &Member,
    opts: &FailoverOptions,
) -> Result<ActionReport, FailoverError> {
    let mut rec = Recorder::new();
    match repoint_with(replica, primary, opts, &mut rec).await {
        Ok(()) => Ok(ActionReport {
            took: rec.elapsed(),
            events: rec.into_events(),
        }),
        Err(e) => Err(e.with_events(rec.into_events())),
    }
}

async fn repoint_with(
    replica: &Member,
    primary: &Member,
    opts: &FailoverOptions,
    rec: &mut Recorder,
) -> Result<(), FailoverError> {
    let mut c = Ctl::connect(replica, opts, rec).await?;
    make_replica(&mut c, rec, primary, opts, false).await
}

/// `STOP SLAVE; [SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos]; [semi-sync replica side];
/// CHANGE MASTER TO ...; START SLAVE`, then waits until both threads run.
pub(crate) async fn make_replica(
    c: &mut Ctl,
    rec: &mut Recorder,
    primary: &Member,
    opts: &FailoverOptions,
    from_own_binlog: bool,
) -> Result<(), FailoverError> {
    let Some((host, port)) = primary.host_port() else {
        return Err(FailoverError::new(
            &c.server,
            Step::ChangeMaster,
            StepError::Address(primary.address.clone()),
        ));
    };
    if !from_own_binlog {
        // An old primary being rejoined has no IO thread; a replica's may be stuck on a stalled
        // primary (see `kill_threads` and `semi_sync_replica_off`).
        if opts.semi_sync {
            semi_sync_replica_off(c, rec).await?;
        }
        kill_io_thread(c, rec, opts).await?;
    }
    c.run_within(rec, Step::StopSlave, "STOP SLAVE", None, stop_bound(opts))
        .await?;
    if from_own_binlog {
        c.exec(
            rec,
            Step::SetSlavePos,
            "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos",
        )
        .await?;
    }
    if opts.semi_sync && from_own_binlog {
        c.exec(
            rec,
            Step::SemiSync,
            "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
        )
        .await?;
    }
    if opts.semi_sync {
        c.exec(
            rec,
            Step::SemiSync,
            "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
        )
        .await?;
    }
    // A new MASTER_HOST resets the heartbeat period to half of slave_net_timeout unless given.
    let heartbeat = opts
        .heartbeat_period
        .map(|p| format!(", MASTER_HEARTBEAT_PERIOD={:.3}", p.as_secs_f64()))
        .unwrap_or_default();
    let change = |password: &str| {
        format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={port}, MASTER_USER={}, \
             MASTER_PASSWORD={password}, MASTER_USE_GTID=slave_pos, \
             MASTER_CONNECT_RETRY=1{heartbeat}",
            quote_str(host),
            quote_str(&opts.replication.user),
        )
    };
    let sql = change(&quote_str(&opts.replication.password));
    let shown = change("'***'");
    let after = opts.statement_timeout;
    c.run_within(rec, Step::ChangeMaster, &sql, Some(&shown), after)
        .await?;
    c.exec(rec, Step::StartSlave, "START SLAVE").await?;
    verify_replicating(c, rec, opts).await
}

/// Polls `SHOW ALL SLAVES STATUS` until both threads run, an IO or SQL error shows, or
/// [`FailoverOptions::verify_timeout`] passes.
async fn verify_replicating(
    c: &mut Ctl,
    rec: &mut Recorder,
    opts: &FailoverOptions,
) -> Result<(), FailoverError> {
    let started = Instant::now();
    let deadline = started + opts.verify_timeout;
    let result = loop {
        let st = match c.rows_quiet("SHOW ALL SLAVES STATUS").await {
            Ok(rows) => parse_slave_status(&rows),
            Err(e) => break Err(e),
        };
        let Some(st) = st else {
            break Err(StepError::Refused("no replication configured".into()));
        };
        if st.is_running() {
            break Ok(());
        }
        if st.io_running == ThreadState::No && st.last_io_errno != 0 {
            break Err(StepError::Refused(format!(
                "IO thread stopped: {} {}",
                st.last_io_errno, st.last_io_error
            )));
        }
        if st.sql_running == ThreadState::No && st.last_sql_errno != 0 {
            break Err(StepError::Refused(format!(
                "SQL thread stopped: {} {}",
                st.last_sql_errno, st.last_sql_error
            )));
        }
        if Instant::now() >= deadline {
            break Err(StepError::Refused(format!(
                "threads not running after {:?}: IO {:?} ({} {}), SQL {:?}",
                opts.verify_timeout,
                st.io_running,
                st.last_io_errno,
                st.last_io_error,
                st.sql_running
            )));
        }
        sleep(Duration::from_millis(5)).await;
    };
    let outcome = match &result {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    rec.record(&c.server, Step::VerifyReplicating, None, started, outcome);
    result.map_err(|cause| FailoverError::new(&c.server, Step::VerifyReplicating, cause))
}

/// `SET GLOBAL read_only = 1` on an old primary that is reachable again, so that the
/// application account (without SUPER / READ_ONLY ADMIN) can no longer write to it. Call it as
/// soon as the monitor sees it reachable; it does not wait for the server.
///
/// Limits: accounts with SUPER or READ_ONLY ADMIN still write (give the application none);
/// clients connected to it directly keep their sessions.
///
/// # Errors
///
/// Connecting or the statement failed (still unreachable).
pub async fn fence(old: &Member, opts: &FailoverOptions) -> Result<ActionReport, FailoverError> {
    let mut rec = Recorder::new();
    let result = async {
        let mut c = Ctl::connect(old, opts, &mut rec).await?;
        if opts.semi_sync {
            // Commits that waited for an acknowledgement when the server stalled would hold
            // `read_only = 1` back until `rpl_semi_sync_master_timeout` (10 s measured), then
            // commit anyway. Switched off, they commit now, unacknowledged (their clients got
            // an error from the proxy), and the fence follows at once. Refused (a server
            // without the variable), the fence still goes on: it only takes longer.
            match c
                .exec(
                    &mut rec,
                    Step::SemiSync,
                    "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
                )
                .await
            {
                Err(e) if matches!(&*e.cause, StepError::Query(q) if q.is_server_error()) => {}
                other => other?,
            }
        }
        c.exec(&mut rec, Step::SetReadOnly, "SET GLOBAL read_only = 1")
            .await
    }
    .await;
    match result {
        Ok(()) => Ok(ActionReport {
            took: rec.elapsed(),
            events: rec.into_events(),
        }),
        Err(e) => Err(e.with_events(rec.into_events())),
    }
}

/// Makes an old primary a replica of `new_primary`, if its history is a prefix of the new
/// primary's; otherwise leaves it read-only and not replicating, and reports the transactions
/// only it has ([`RejoinOutcome::Quarantined`]; see
/// [`errant_transactions`](super::errant_transactions) for the comparison). Those are also the
/// transactions the failover possibly lost.
///
/// Steps: fence (`read_only = 1`), read the old primary's `gtid_binlog_pos` and the new
/// primary's `gtid_current_pos` and `gtid_slave_pos`, compare; then `STOP SLAVE`, `SET GLOBAL
/// gtid_slave_pos = @@gtid_binlog_pos`, (semi-sync: master side off, replica side on),
/// `CHANGE MASTER TO` the new primary `... MASTER_USE_GTID=slave_pos`, `START SLAVE`, and wait
/// until both threads run.
///
/// # Errors
///
/// A failed step, including the IO thread failing after `START SLAVE` (MariaDB's own check
/// that the histories fit, error 1236).
pub async fn rejoin(
    old: &Member,
    new_primary: &Member,
    opts: &FailoverOptions,
) -> Result<RejoinReport, FailoverError> {
    let mut rec = Recorder::new();
    match rejoin_with(old, new_primary, opts, &mut rec).await {
        Ok((outcome, old_position, new_position)) => Ok(RejoinReport {
            outcome,
            old_position,
            new_position,
            took: rec.elapsed(),
            events: rec.into_events(),
        }),
        Err(e) => Err(e.with_events(rec.into_events())),
    }
}

pub(crate) async fn rejoin_with(
    old: &Member,
    new_primary: &Member,
    opts: &FailoverOptions,
    rec: &mut Recorder,
) -> Result<(RejoinOutcome, MariaPos, MariaPos), FailoverError> {
    let mut o = Ctl::connect(old, opts, rec).await?;
    o.exec(rec, Step::SetReadOnly, "SET GLOBAL read_only = 1")
        .await?;
    let mut n = Ctl::connect(new_primary, opts, rec).await?;
    let [old_binlog] = o.positions(rec, ["gtid_binlog_pos"]).await?;
    let [new_current, new_slave] = n
        .positions(rec, ["gtid_current_pos", "gtid_slave_pos"])
        .await?;
    drop(n);
    let started = Instant::now();
    let errant = errant_transactions(&old_binlog, &new_current, &new_slave);
    let outcome = if errant.is_empty() {
        Outcome::Done
    } else {
        Outcome::Warning(format!(
            "{} has transactions {} lacks: {}; quarantined",
            old.name,
            new_primary.name,
            show(&errant)
        ))
    };
    rec.record(&old.name, Step::CheckHistory, None, started, outcome);
    if !errant.is_empty() {
        return Ok((
            RejoinOutcome::Quarantined { errant },
            old_binlog,
            new_current,
        ));
    }
    make_replica(&mut o, rec, new_primary, opts, true).await?;
    Ok((RejoinOutcome::Rejoined, old_binlog, new_current))
}

#[cfg(test)]
mod tests {
    use super::connected_io_state;

    #[test]
    fn io_thread_states_with_a_connection() {
        assert!(connected_io_state("Waiting for master to send event"));
        assert!(connected_io_state("Queueing master event to the relay log"));
        assert!(!connected_io_state("Connecting to master"));
        assert!(!connected_io_state(
            "Waiting to reconnect after a failed master event read"
        ));
        assert!(!connected_io_state(
            "Reconnecting after a failed master event read"
        ));
        assert!(!connected_io_state(""));
    }
}
