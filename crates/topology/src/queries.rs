//! The statements of a probe, chosen once per connection by flavour and version.
//!
//! The control client reads only the first result of a statement, so multi-statements are out;
//! the probe instead gathers every variable it can into one `SELECT` (including, on MariaDB,
//! the semi-sync status variables from information_schema and the heartbeat row's age) and
//! adds the two `SHOW` statements that have no `SELECT` equivalent.

use crate::heartbeat;
use crate::parse::ServerVersion;
use crate::types::Flavour;

/// What a probe sends to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statements {
    /// The `SELECT` of variables, with the heartbeat column when the heartbeat is on.
    pub variables: String,
    /// The same without the heartbeat column (for when its table does not exist yet).
    pub variables_without_heartbeat: String,
    /// The replication connection(s).
    pub replication: &'static str,
    /// This server's binlog coordinates.
    pub binlog: &'static str,
    /// A separate statement for the semi-sync status variables, where the `SELECT` cannot
    /// carry them (MySQL: information_schema.GLOBAL_STATUS is gone, performance_schema may be
    /// off).
    pub semi_sync: Option<&'static str>,
}

/// Label of the variables `SELECT` in errors.
pub(crate) const VARIABLES: &str = "SELECT of variables";

const MARIADB_VARIABLES: &str = "SELECT @@read_only AS read_only, @@server_id AS server_id, \
    @@version AS version, @@log_bin AS log_bin, @@gtid_current_pos AS gtid_current_pos, \
    @@gtid_slave_pos AS gtid_slave_pos, @@gtid_binlog_pos AS gtid_binlog_pos, \
    (SELECT GROUP_CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS \
    WHERE VARIABLE_NAME LIKE 'RPL_SEMI_SYNC_%' AND VARIABLE_NAME IN \
    ('RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_MASTER_CLIENTS', 'RPL_SEMI_SYNC_SLAVE_STATUS')) \
    AS semi_sync";

const MYSQL_VARIABLES: &str = "SELECT @@read_only AS read_only, @@server_id AS server_id, \
    @@version AS version, @@log_bin AS log_bin, @@gtid_executed AS gtid_executed";

/// The statements for a server of `version`; `heartbeat_schema` adds the heartbeat column.
pub(crate) fn statements(version: ServerVersion, heartbeat_schema: Option<&str>) -> Statements {
    let base = match version.flavour {
        Flavour::MariaDb => MARIADB_VARIABLES,
        Flavour::MySql => MYSQL_VARIABLES,
    };
    let variables = match heartbeat_schema {
        Some(schema) => format!("{base}, {}", heartbeat::age_column(schema)),
        None => base.to_string(),
    };
    let (replication, binlog, semi_sync) = match version.flavour {
        Flavour::MariaDb => ("SHOW ALL SLAVES STATUS", "SHOW MASTER STATUS", None),
        Flavour::MySql => (
            if version.at_least(8, 0, 22) {
                "SHOW REPLICA STATUS"
            } else {
                "SHOW SLAVE STATUS"
            },
            // SHOW BINARY LOG STATUS came in 8.2.0; 8.4 removed SHOW MASTER STATUS.
            if version.at_least(8, 2, 0) {
                "SHOW BINARY LOG STATUS"
            } else {
                "SHOW MASTER STATUS"
            },
            Some("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync%'"),
        ),
    };
    Statements {
        variables,
        variables_without_heartbeat: base.to_string(),
        replication,
        binlog,
        semi_sync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_version;

    #[test]
    fn by_flavour_and_version() {
        let maria = statements(parse_version("5.5.5-10.11.19-MariaDB-log"), None);
        assert_eq!(maria.replication, "SHOW ALL SLAVES STATUS");
        assert_eq!(maria.binlog, "SHOW MASTER STATUS");
        assert_eq!(maria.semi_sync, None);
        assert!(maria.variables.contains("@@gtid_slave_pos"));
        assert!(!maria.variables.contains("heartbeat"));

        let with_hb = statements(parse_version("10.6.1-MariaDB"), Some("lagless"));
        assert!(with_hb.variables.ends_with("AS heartbeat_age_us"));
        assert!(!with_hb.variables_without_heartbeat.contains("heartbeat"));

        let old = statements(parse_version("5.7.44-log"), None);
        assert_eq!(old.replication, "SHOW SLAVE STATUS");
        assert_eq!(old.binlog, "SHOW MASTER STATUS");
        assert!(old.variables.contains("@@gtid_executed"));
        assert!(old.semi_sync.is_some());

        let m80 = statements(parse_version("8.0.36"), None);
        assert_eq!(m80.replication, "SHOW REPLICA STATUS");
        assert_eq!(m80.binlog, "SHOW MASTER STATUS");

        let m84 = statements(parse_version("8.4.0"), None);
        assert_eq!(m84.replication, "SHOW REPLICA STATUS");
        assert_eq!(m84.binlog, "SHOW BINARY LOG STATUS");
    }
}
