//! The optional heartbeat table, a lag measure that does not depend on Seconds_Behind_Master
//! (which reads 0 or NULL while a replica is behind).
//!
//! Each round, on the server of each cluster that looks like its primary, the monitor runs
//! `REPLACE INTO <schema>.lagless_heartbeat (id, ts) VALUES (1, NOW(6))` (creating the schema
//! and the table first, once per connection). On every replica, the probe's `SELECT` reads
//! `TIMESTAMPDIFF(MICROSECOND, ts, NOW(6))`: the age of the newest heartbeat the replica has
//! applied. That age is the lag, with these caveats:
//!
//! - **Resolution of one interval.** A caught-up replica reads the age of the last write, so
//!   between 0 and about one interval (250 ms by default) plus the replication delay. Compare it
//!   with thresholds well above the interval.
//! - **Clock skew.** `ts` is the primary's clock and `NOW(6)` the replica's: any difference
//!   between the two clocks is added to (or, clamped at zero, hidden from) the lag. On one
//!   machine (the sandbox) there is none; across machines, keep clocks in sync (NTP) or treat
//!   the value as approximate. `ts` is a `TIMESTAMP`, stored in UTC, so different time zones
//!   do not matter.
//! - **No writer, no heartbeat.** While no server writes (the primary is down, or two servers
//!   look like primaries), the age keeps growing on every replica even when it applied
//!   everything: read it together with the primary's reachability.
//! - **Writes.** Every heartbeat is a transaction: the primary's GTID position advances every
//!   interval, and the row replicates like any other.
//! - **Who writes.** Only a server that answered, is writable (`read_only=0`) and replicates
//!   from nobody, and only when it is the only such server of its cluster in the last
//!   snapshot: two writers in one GTID domain would break replication under
//!   `gtid_strict_mode`.
//!
//! Privileges: CREATE (once), INSERT and DELETE on the schema for the writer; SELECT for the
//! readers.

use crate::types::ServerObservation;

/// The table's name, in the configured schema.
pub const TABLE: &str = "lagless_heartbeat";

/// `name` as a quoted identifier.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn table(schema: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(TABLE))
}

pub(crate) fn create_schema_sql(schema: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(schema))
}

pub(crate) fn create_table_sql(schema: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (id INT UNSIGNED NOT NULL PRIMARY KEY, \
         ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB",
        table(schema)
    )
}

pub(crate) fn write_sql(schema: &str) -> String {
    format!("REPLACE INTO {} (id, ts) VALUES (1, NOW(6))", table(schema))
}

/// The scalar subquery the probe's `SELECT` carries on every server (NULL without the row).
pub(crate) fn age_column(schema: &str) -> String {
    format!(
        "(SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) FROM {} WHERE id = 1) AS heartbeat_age_us",
        table(schema)
    )
}

/// Which servers may write the heartbeat in the next round, given the latest observations:
/// in each cluster, the one server that [looks like its primary](ServerObservation::looks_like_primary),
/// and none when there are several.
pub fn writers(latest: &[ServerObservation]) -> Vec<bool> {
    latest
        .iter()
        .map(|o| {
            o.looks_like_primary()
                && latest
                    .iter()
                    .filter(|x| x.cluster == o.cluster && x.looks_like_primary())
                    .count()
                    == 1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MonitoredServer;
    use crate::parse::parse_thread_state;
    use crate::types::{ReplicaStatus, ThreadState};
    use tokio::time::Instant;

    fn obs(cluster: usize, server: usize, read_only: bool, replica: bool) -> ServerObservation {
        let mut o = ServerObservation::blank(
            &MonitoredServer::new(cluster, server, format!("s{cluster}{server}"), "x:1"),
            Instant::now(),
        );
        o.reachable = true;
        o.read_only = Some(read_only);
        o.replication = replica.then(|| ReplicaStatus {
            io_running: ThreadState::Yes,
            sql_running: parse_thread_state("Yes"),
            seconds_behind_master: Some(0),
            master_host: "127.0.0.1".into(),
            master_port: 3310,
            using_gtid: "Slave_Pos".into(),
            ..Default::default()
        });
        o
    }

    #[test]
    fn only_a_lone_writable_non_replica_writes() {
        let normal = [obs(0, 0, false, false), obs(0, 1, true, true)];
        assert_eq!(writers(&normal), [true, false]);
        // Two writable servers without replication in one cluster: nobody writes there.
        let split = [
            obs(0, 0, false, false),
            obs(0, 1, false, false),
            obs(1, 0, false, false),
        ];
        assert_eq!(writers(&split), [false, false, true]);
        // A writable replica (read_only forgotten) is not a primary.
        assert_eq!(
            writers(&[obs(0, 0, false, false), obs(0, 1, false, true)]),
            [true, false]
        );
        // Unreachable: not written.
        let mut down = obs(0, 0, false, false);
        down.reachable = false;
        assert_eq!(writers(&[down]), [false]);
    }

    #[test]
    fn statements_quote_the_schema() {
        assert_eq!(
            write_sql("lag`less"),
            "REPLACE INTO `lag``less`.`lagless_heartbeat` (id, ts) VALUES (1, NOW(6))"
        );
        assert!(create_table_sql("lagless").contains("TIMESTAMP(6)"));
        assert!(age_column("lagless").contains("FROM `lagless`.`lagless_heartbeat`"));
        assert_eq!(
            create_schema_sql("lagless"),
            "CREATE DATABASE IF NOT EXISTS `lagless`"
        );
    }
}
