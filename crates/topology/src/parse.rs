//! Pure parsers from the servers' answers to the published types. No I/O: each takes a
//! [`TextResult`] or a string, so they are tested with captured rows (see `parse/tests.rs`).
//!
//! Column names are looked up case-insensitively and under both spellings (MariaDB and MySQL
//! before 8.0.22: `Slave_IO_Running`, `Master_Host`...; MySQL 8.0.22+: `Replica_IO_Running`,
//! `Source_Host`...), so one parser reads both.

use std::time::Duration;

use lagless_backend::TextResult;

use crate::types::{BinlogPosition, Flavour, ReplicaStatus, SemiSync, ThreadState};

/// Flavour and version number of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersion {
    pub flavour: Flavour,
    /// (major, minor, patch); zeros where the string has no number.
    pub number: (u32, u32, u32),
}

impl ServerVersion {
    /// At least `major.minor.patch`.
    pub fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.number >= (major, minor, patch)
    }
}

/// Reads a version string: `@@version` (`10.11.19-MariaDB-0+deb12u1-log`, `8.0.36`) or a
/// handshake's (MariaDB's carries a `5.5.5-` prefix for old clients, which is skipped).
pub fn parse_version(text: &str) -> ServerVersion {
    let flavour = if text.to_ascii_lowercase().contains("mariadb") {
        Flavour::MariaDb
    } else {
        Flavour::MySql
    };
    let text = match flavour {
        Flavour::MariaDb => text.strip_prefix("5.5.5-").unwrap_or(text),
        Flavour::MySql => text,
    };
    let numeric = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("");
    let mut parts = numeric.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    ServerVersion {
        flavour,
        number: (next(), next(), next()),
    }
}

/// The probe's `SELECT` of variables (see `queries.rs` for the column aliases).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    pub read_only: Option<bool>,
    pub server_id: Option<u32>,
    pub version: Option<String>,
    pub log_bin: Option<bool>,
    pub gtid_current_pos: Option<String>,
    pub gtid_slave_pos: Option<String>,
    pub gtid_binlog_pos: Option<String>,
    pub gtid_executed: Option<String>,
    /// From the `semi_sync` column (MariaDB: `NAME=VALUE,...` gathered from
    /// information_schema); default when the column is absent.
    pub semi_sync: SemiSync,
    /// The heartbeat row's age, `TIMESTAMPDIFF(MICROSECOND, ts, NOW(6))`: `None` without the
    /// column or the row.
    pub heartbeat_age_us: Option<i64>,
}

/// Reads the probe's `SELECT` of variables.
///
/// # Errors
///
/// A description when the result has no row.
pub fn parse_variables(result: &TextResult) -> Result<Variables, String> {
    let Some(values) = result.rows.first() else {
        return Err("no row".into());
    };
    let row = Row::new(&result.columns, values);
    let text = |name: &str| row.get(&[name]).map(str::to_string);
    Ok(Variables {
        read_only: row.get(&["read_only"]).and_then(parse_bool),
        server_id: row.get(&["server_id"]).and_then(|v| v.parse().ok()),
        version: text("version"),
        log_bin: row.get(&["log_bin"]).and_then(parse_bool),
        gtid_current_pos: text("gtid_current_pos"),
        gtid_slave_pos: text("gtid_slave_pos"),
        gtid_binlog_pos: text("gtid_binlog_pos"),
        gtid_executed: text("gtid_executed").map(|s| s.replace('\n', "")),
        semi_sync: row
            .get(&["semi_sync"])
            .map(parse_semi_sync_list)
            .unwrap_or_default(),
        heartbeat_age_us: row.get(&["heartbeat_age_us"]).and_then(|v| v.parse().ok()),
    })
}

/// The replication connection from `SHOW ALL SLAVES STATUS` (MariaDB) or `SHOW REPLICA STATUS`
/// / `SHOW SLAVE STATUS` (MySQL): `None` when the result has no row (the server replicates
/// from nobody). With several connections (multi-source), the default one (empty name) is
/// chosen, else the first.
pub fn parse_slave_status(result: &TextResult) -> Option<ReplicaStatus> {
    let rows = || result.rows.iter().map(|r| Row::new(&result.columns, r));
    let default = rows().find(|r| {
        r.get(&["Connection_name", "Channel_Name"])
            .is_none_or(str::is_empty)
    });
    default
        .or_else(|| rows().next())
        .map(|r| parse_replica_row(&r))
}

fn parse_replica_row(r: &Row<'_>) -> ReplicaStatus {
    let text = |names: &[&str]| r.get(names).unwrap_or("").to_string();
    let number = |names: &[&str]| r.get(names).and_then(|v| v.parse::<u64>().ok());
    let thread = |names: &[&str]| parse_thread_state(r.get(names).unwrap_or(""));
    ReplicaStatus {
        connection_name: text(&["Connection_name", "Channel_Name"]),
        io_running: thread(&["Slave_IO_Running", "Replica_IO_Running"]),
        sql_running: thread(&["Slave_SQL_Running", "Replica_SQL_Running"]),
        seconds_behind_master: number(&["Seconds_Behind_Master", "Seconds_Behind_Source"]),
        master_host: text(&["Master_Host", "Source_Host"]),
        master_port: r
            .get(&["Master_Port", "Source_Port"])
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        master_log_file: text(&["Master_Log_File", "Source_Log_File"]),
        read_master_log_pos: number(&["Read_Master_Log_Pos", "Read_Source_Log_Pos"]).unwrap_or(0),
        relay_master_log_file: text(&["Relay_Master_Log_File", "Relay_Source_Log_File"]),
        exec_master_log_pos: number(&["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"]).unwrap_or(0),
        // MySQL separates the GTIDs of a set with ",\n".
        gtid_io_pos: text(&["Gtid_IO_Pos", "Retrieved_Gtid_Set"]).replace('\n', ""),
        using_gtid: text(&["Using_Gtid", "Auto_Position"]),
        sql_delay: number(&["SQL_Delay"]).unwrap_or(0),
        last_io_errno: number(&["Last_IO_Errno"]).unwrap_or(0) as u32,
        last_io_error: text(&["Last_IO_Error"]),
        last_sql_errno: number(&["Last_SQL_Errno"]).unwrap_or(0) as u32,
        last_sql_error: text(&["Last_SQL_Error"]),
        received_heartbeats: number(&["Slave_received_heartbeats"]),
        heartbeat_period: r
            .get(&["Slave_heartbeat_period"])
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64),
    }
}

/// `Yes` / `No` / `Connecting` / anything else.
pub fn parse_thread_state(text: &str) -> ThreadState {
    match text {
        t if t.eq_ignore_ascii_case("yes") => ThreadState::Yes,
        t if t.eq_ignore_ascii_case("no") => ThreadState::No,
        t if t.eq_ignore_ascii_case("connecting") => ThreadState::Connecting,
        other => ThreadState::Other(other.to_string()),
    }
}

/// `SHOW MASTER STATUS` / `SHOW BINARY LOG STATUS`: `None` when binary logging is off (no row).
pub fn parse_binlog_status(result: &TextResult) -> Option<BinlogPosition> {
    let values = result.rows.first()?;
    let row = Row::new(&result.columns, values);
    Some(BinlogPosition {
        file: row.get(&["File"])?.to_string(),
        pos: row.get(&["Position"])?.parse().ok()?,
    })
}

/// `SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'` (columns `Variable_name`, `Value`).
pub fn parse_semi_sync_rows(result: &TextResult) -> SemiSync {
    let (Some(n), Some(v)) = (result.column("Variable_name"), result.column("Value")) else {
        return SemiSync::default();
    };
    semi_sync_from_pairs(result.rows.iter().filter_map(|row| {
        Some((
            row.get(n)?.as_deref()?,
            row.get(v)?.as_deref().unwrap_or(""),
        ))
    }))
}

/// `NAME=VALUE,NAME=VALUE` as the MariaDB probe gathers it with `GROUP_CONCAT`.
pub fn parse_semi_sync_list(text: &str) -> SemiSync {
    semi_sync_from_pairs(
        text.split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(n, v)| (n.trim(), v.trim())),
    )
}

fn semi_sync_from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> SemiSync {
    let mut s = SemiSync::default();
    for (name, value) in pairs {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix("rpl_semi_sync_") {
            Some("master_status" | "source_status") => s.master_status = parse_bool(value),
            Some("master_clients" | "source_clients") => s.master_clients = value.parse().ok(),
            Some("slave_status" | "replica_status") => s.slave_status = parse_bool(value),
            _ => {}
        }
    }
    s
}

/// The heartbeat age as a lag: negative ages (the replica's clock behind the primary's) read
/// as zero.
pub fn heartbeat_lag(age_us: i64) -> Duration {
    Duration::from_micros(age_us.max(0) as u64)
}

/// `ON`/`1`/`YES`/`TRUE` and `OFF`/`0`/`NO`/`FALSE`, any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_uppercase().as_str() {
        "ON" | "1" | "YES" | "TRUE" => Some(true),
        "OFF" | "0" | "NO" | "FALSE" => Some(false),
        _ => None,
    }
}

/// One row with its column names.
struct Row<'a> {
    columns: &'a [String],
    values: &'a [Option<String>],
}

impl<'a> Row<'a> {
    fn new(columns: &'a [String], values: &'a [Option<String>]) -> Self {
        Row { columns, values }
    }

    /// The value of the first of `names` that is a column; `None` for NULL or no such column.
    fn get(&self, names: &[&str]) -> Option<&'a str> {
        let values = self.values;
        names.iter().find_map(|name| {
            let i = self
                .columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))?;
            values.get(i)?.as_deref()
        })
    }
}

#[cfg(test)]
mod tests;
