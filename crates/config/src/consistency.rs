//! Consistency modes as configured (`[consistency] default`, a user's `consistency`) and as a
//! client chooses them (`SET @lagless_consistency = 'MODE'`). Their meaning is implemented in
//! `lagless-routing`; here they are parsed and printed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How fresh a session's reads must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Healthy replicas, only the cluster's lag bound applies. Can be stale.
    Eventual,
    /// Every read on the primary.
    Primary,
    /// Reads on the primary for a window after the session's last write.
    PrimaryAfterWrite(Duration),
    /// After a write, the next replica read is held until this much time has passed since the
    /// write (the "sleep" remedy): stale when the lag exceeds it.
    Delay(Duration),
    /// Replicas whose measured lag exceeds the bound are excluded. Not read-your-writes:
    /// Seconds_Behind_Master reads 0 as a delayed event arrives and NULL when the SQL thread stops.
    MaxLag(Duration),
    /// A replica is eligible once the monitor saw its executed binlog position (in the primary's
    /// coordinates) at or past the session's last write.
    Position,
    /// A replica is eligible once its executed GTIDs contain the session's last write: known
    /// from the monitor, or checked without waiting; otherwise the primary. The default.
    #[default]
    Gtid,
    /// MASTER_POS_WAIT on the replica before the read, up to the timeout; then the primary.
    PosWait(Duration),
    /// MASTER_GTID_WAIT on the replica before the read, up to the timeout; then the primary.
    GtidWait(Duration),
    /// Reads must see the newest GTID any session committed through this proxy: read-your-writes
    /// across connections.
    Global,
}

impl Consistency {
    /// `position` and `pos_wait`: the modes that need each write's binlog position.
    pub fn uses_binlog_positions(self) -> bool {
        matches!(self, Consistency::Position | Consistency::PosWait(_))
    }

    /// `gtid`, `gtid_wait` and `global`: the modes that judge a replica by its executed
    /// GTIDs, which the replicas' binlog streams keep fresh between probes.
    pub fn uses_replica_gtids(self) -> bool {
        matches!(
            self,
            Consistency::Gtid | Consistency::GtidWait(_) | Consistency::Global
        )
    }

    /// Whether the mode promises that a session reads its own writes. `primary_after_write`
    /// does only while replication lag stays under its window, and `delay` under its delay:
    /// neither is a promise.
    pub fn read_your_writes(self) -> bool {
        !matches!(
            self,
            Consistency::Eventual
                | Consistency::MaxLag(_)
                | Consistency::Delay(_)
                | Consistency::PrimaryAfterWrite(_)
        )
    }
}

/// Why a mode string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeError(pub String);

impl fmt::Display for ModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown consistency mode `{}`: expected eventual, primary, primary_after_write(MS), delay(MS), \
             max_lag(SECONDS), position, gtid, pos_wait(MS), gtid_wait(MS) or global",
            self.0
        )
    }
}

impl std::error::Error for ModeError {}

impl FromStr for Consistency {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, ModeError> {
        let t = s.trim().to_ascii_lowercase();
        let err = || ModeError(s.to_string());
        let (name, arg) = match t.split_once('(') {
            Some((name, rest)) => {
                let arg = rest.strip_suffix(')').ok_or_else(err)?.trim();
                let n: u64 = arg.parse().map_err(|_| err())?;
                (name.trim(), Some(n))
            }
            None => (t.as_str(), None),
        };
        let ms = |n: Option<u64>| n.map(Duration::from_millis).ok_or_else(err);
        Ok(match (name, arg) {
            ("eventual", None) => Consistency::Eventual,
            ("primary", None) => Consistency::Primary,
            ("position", None) => Consistency::Position,
            ("gtid", None) => Consistency::Gtid,
            ("global", None) => Consistency::Global,
            ("primary_after_write", a) => Consistency::PrimaryAfterWrite(ms(a)?),
            ("delay", a) => Consistency::Delay(ms(a)?),
            ("max_lag", Some(secs)) => Consistency::MaxLag(Duration::from_secs(secs)),
            ("pos_wait", a) => Consistency::PosWait(ms(a)?),
            ("gtid_wait", a) => Consistency::GtidWait(ms(a)?),
            _ => return Err(err()),
        })
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| d.as_millis();
        match self {
            Consistency::Eventual => f.write_str("eventual"),
            Consistency::Primary => f.write_str("primary"),
            Consistency::PrimaryAfterWrite(d) => write!(f, "primary_after_write({})", ms(d)),
            Consistency::Delay(d) => write!(f, "delay({})", ms(d)),
            Consistency::MaxLag(d) => write!(f, "max_lag({})", d.as_secs()),
            Consistency::Position => f.write_str("position"),
            Consistency::Gtid => f.write_str("gtid"),
            Consistency::PosWait(d) => write!(f, "pos_wait({})", ms(d)),
            Consistency::GtidWait(d) => write!(f, "gtid_wait({})", ms(d)),
            Consistency::Global => f.write_str("global"),
        }
    }
}
