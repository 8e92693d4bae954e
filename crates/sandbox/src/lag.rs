//! Inducing replica lag, checked by GTID positions and thread states (never by
//! Seconds_Behind_Master, which reads 0 or NULL while a replica is behind).

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::gtid::GtidPos;
use crate::sandbox::Sandbox;
use crate::server::{Server, SlaveStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagAction {
    /// `CHANGE MASTER TO MASTER_DELAY=s` (applies events s seconds after they were written).
    Delay(u64),
    /// `STOP SLAVE SQL_THREAD`: events are still received but not applied.
    StopSql,
    /// Undo both: MASTER_DELAY=0, threads started; waits until the replica caught up.
    Resume,
}

/// The replica's state after a lag action.
#[derive(Debug, Clone, Serialize)]
pub struct LagReport {
    pub replica: String,
    pub action: String,
    pub io_running: String,
    pub sql_running: String,
    pub sql_delay: u64,
    /// The primary's @@gtid_binlog_pos.
    pub primary_gtid: String,
    /// What the replica has applied (@@gtid_slave_pos).
    pub replica_gtid: String,
    /// What the replica has received.
    pub received_gtid: String,
}

/// Applies `action` to replica `replica` (from 1) of the sandbox in `dir`.
pub fn lag(dir: &Path, replica: usize, action: LagAction) -> Result<LagReport> {
    let sandbox = Sandbox::open(dir)?;
    if replica == 0 || replica > sandbox.replicas().len() {
        bail!(
            "no replica{replica}: the sandbox has {} replicas (counted from 1)",
            sandbox.replicas().len()
        );
    }
    sandbox.lag(replica, action)
}

pub(crate) fn apply(
    primary: &Server,
    replica: &Server,
    action: LagAction,
    timeout: Duration,
) -> Result<LagReport> {
    let label = match action {
        LagAction::Delay(s) => format!("delay {s}s"),
        LagAction::StopSql => "stop-sql".into(),
        LagAction::Resume => "resume".into(),
    };
    let st = match action {
        LagAction::Delay(s) => {
            replica.sql(&format!(
                "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY={s}; START SLAVE"
            ))?;
            wait_status(replica, timeout, |st| st.running() && st.sql_delay == s)?
        }
        LagAction::StopSql => {
            replica.sql("STOP SLAVE SQL_THREAD")?;
            wait_status(replica, timeout, |st| st.sql_running == "No")?
        }
        LagAction::Resume => {
            let current = require_status(replica)?;
            if current.sql_delay != 0 {
                // CHANGE MASTER needs both threads stopped.
                replica.sql("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")?;
            } else {
                replica.sql("START SLAVE")?;
            }
            wait_status(replica, timeout, |st| st.running() && st.sql_delay == 0)?;
            let target = primary.gtid_binlog_pos()?;
            wait_applied(replica, &target, timeout)?;
            require_status(replica)?
        }
    };
    Ok(LagReport {
        replica: replica.name().into(),
        action: label,
        io_running: st.io_running,
        sql_running: st.sql_running,
        sql_delay: st.sql_delay,
        primary_gtid: primary.gtid_binlog_pos()?.to_string(),
        replica_gtid: st.gtid_slave_pos,
        received_gtid: st.gtid_io_pos,
    })
}

fn require_status(replica: &Server) -> Result<SlaveStatus> {
    match replica.slave_status()? {
        Some(st) => Ok(st),
        None => bail!("{} has no replication configured", replica.name()),
    }
}

fn wait_status(
    replica: &Server,
    timeout: Duration,
    ok: impl Fn(&SlaveStatus) -> bool,
) -> Result<SlaveStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let st = require_status(replica)?;
        if ok(&st) {
            return Ok(st);
        }
        if Instant::now() > deadline {
            bail!(
                "{}: replication did not reach the expected state: {st:?}",
                replica.name()
            );
        }
        sleep(Duration::from_millis(10));
    }
}

/// Waits until `replica` has applied `target` (its @@gtid_slave_pos covers it).
pub(crate) fn wait_applied(
    replica: &Server,
    target: &GtidPos,
    timeout: Duration,
) -> Result<GtidPos> {
    let deadline = Instant::now() + timeout;
    loop {
        let pos = replica.gtid_slave_pos()?;
        if pos.covers(target) {
            return Ok(pos);
        }
        if Instant::now() > deadline {
            bail!(
                "{} applied [{pos}], not [{target}], within {timeout:?}",
                replica.name()
            );
        }
        sleep(Duration::from_millis(10));
    }
}
