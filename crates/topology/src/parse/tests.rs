use super::*;

/// A result from `|`-separated lines as `mariadb -B` prints them (tabs replaced), `NULL` as NULL.
fn table(header: &str, rows: &[&str]) -> TextResult {
    let cells = |line: &str| -> Vec<Option<String>> {
        line.split('|')
            .map(|c| (c != "NULL").then(|| c.to_string()))
            .collect()
    };
    let result = TextResult {
        columns: header.split('|').map(str::to_string).collect(),
        rows: rows.iter().map(|r| cells(r)).collect(),
    };
    for r in &result.rows {
        assert_eq!(r.len(), result.columns.len(), "bad test row");
    }
    result
}

/// `SHOW ALL SLAVES STATUS` columns of MariaDB 10.11.19.
const MARIADB_SLAVE_COLUMNS: &str = "Connection_name|Slave_SQL_State|Slave_IO_State|Master_Host|Master_User|Master_Port|Connect_Retry|Master_Log_File|Read_Master_Log_Pos|Relay_Log_File|Relay_Log_Pos|Relay_Master_Log_File|Slave_IO_Running|Slave_SQL_Running|Replicate_Do_DB|Replicate_Ignore_DB|Replicate_Do_Table|Replicate_Ignore_Table|Replicate_Wild_Do_Table|Replicate_Wild_Ignore_Table|Last_Errno|Last_Error|Skip_Counter|Exec_Master_Log_Pos|Relay_Log_Space|Until_Condition|Until_Log_File|Until_Log_Pos|Master_SSL_Allowed|Master_SSL_CA_File|Master_SSL_CA_Path|Master_SSL_Cert|Master_SSL_Cipher|Master_SSL_Key|Seconds_Behind_Master|Master_SSL_Verify_Server_Cert|Last_IO_Errno|Last_IO_Error|Last_SQL_Errno|Last_SQL_Error|Replicate_Ignore_Server_Ids|Master_Server_Id|Master_SSL_Crl|Master_SSL_Crlpath|Using_Gtid|Gtid_IO_Pos|Replicate_Do_Domain_Ids|Replicate_Ignore_Domain_Ids|Parallel_Mode|SQL_Delay|SQL_Remaining_Delay|Slave_SQL_Running_State|Slave_DDL_Groups|Slave_Non_Transactional_Groups|Slave_Transactional_Groups|Replicate_Rewrite_DB|Retried_transactions|Max_relay_log_size|Executed_log_entries|Slave_received_heartbeats|Slave_heartbeat_period|Gtid_Slave_Pos";

/// A replica after `STOP SLAVE SQL_THREAD` and two more transactions on the primary.
const MARIADB_SQL_STOPPED: &str = "||Waiting for master to send event|127.0.0.1|repl|3460|1|mysql-bin.000001|900|relay-bin.000002|985|mysql-bin.000001|Yes|No|||||||0||0|686|1502|None||0|No||||||NULL|No|0||0|||1|||Slave_Pos|0-1-3|||optimistic|0|NULL||1|0|1||0|1073741824|14|2|30.000|0-1-2";

/// A caught-up replica.
const MARIADB_RUNNING: &str = "|Slave has read all relay log; waiting for more updates|Waiting for master to send event|127.0.0.1|repl|3460|1|mysql-bin.000001|328|relay-bin.000002|627|mysql-bin.000001|Yes|Yes|||||||0||0|328|930|None||0|No||||||0|No|0||0|||1|||Slave_Pos||||optimistic|0|NULL|Slave has read all relay log; waiting for more updates|0|0|0||0|1073741824|7|0|30.000|";

#[test]
fn mariadb_slave_status_running() {
    let st = parse_slave_status(&table(MARIADB_SLAVE_COLUMNS, &[MARIADB_RUNNING])).unwrap();
    assert_eq!(st.connection_name, "");
    assert_eq!(st.io_running, ThreadState::Yes);
    assert_eq!(st.sql_running, ThreadState::Yes);
    assert!(st.is_running());
    assert_eq!(st.seconds_behind_master, Some(0));
    assert_eq!(
        (st.master_host.as_str(), st.master_port),
        ("127.0.0.1", 3460)
    );
    assert_eq!(st.read_master_log_pos, 328);
    assert_eq!(st.exec_master_log_pos, 328);
    assert_eq!(st.master_log_file, "mysql-bin.000001");
    assert_eq!(st.relay_master_log_file, "mysql-bin.000001");
    assert_eq!(st.using_gtid, "Slave_Pos");
    assert_eq!(st.gtid_io_pos, "");
    assert_eq!(st.sql_delay, 0);
    assert_eq!((st.last_io_errno, st.last_sql_errno), (0, 0));
    assert!(st.last_io_error.is_empty() && st.last_sql_error.is_empty());
    assert_eq!(st.received_heartbeats, Some(0));
    assert_eq!(st.heartbeat_period, Some(Duration::from_secs(30)));
}

#[test]
fn mariadb_slave_status_sql_stopped() {
    let st = parse_slave_status(&table(MARIADB_SLAVE_COLUMNS, &[MARIADB_SQL_STOPPED])).unwrap();
    assert_eq!(st.io_running, ThreadState::Yes);
    assert_eq!(st.sql_running, ThreadState::No);
    assert!(!st.is_running());
    assert_eq!(st.seconds_behind_master, None, "NULL");
    assert_eq!(st.read_master_log_pos, 900);
    assert_eq!(st.exec_master_log_pos, 686);
    assert_eq!(st.gtid_io_pos, "0-1-3");
}

#[test]
fn no_row_means_no_replication_and_default_connection_wins() {
    assert_eq!(parse_slave_status(&table(MARIADB_SLAVE_COLUMNS, &[])), None);
    let named = format!("other{MARIADB_SQL_STOPPED}");
    let st = parse_slave_status(&table(MARIADB_SLAVE_COLUMNS, &[&named, MARIADB_RUNNING])).unwrap();
    assert_eq!(st.connection_name, "");
    assert!(st.is_running());
    let only_named = parse_slave_status(&table(MARIADB_SLAVE_COLUMNS, &[&named])).unwrap();
    assert_eq!(only_named.connection_name, "other");
}

#[test]
fn mysql_replica_status_with_errors() {
    // MySQL 8.0.36 `SHOW REPLICA STATUS`, IO thread failing to connect (subset of columns, in
    // the server's order).
    let header = "Replica_IO_State|Source_Host|Source_User|Source_Port|Connect_Retry|Source_Log_File|Read_Source_Log_Pos|Relay_Log_File|Relay_Log_Pos|Relay_Source_Log_File|Replica_IO_Running|Replica_SQL_Running|Last_Errno|Last_Error|Skip_Counter|Exec_Source_Log_Pos|Relay_Log_Space|Seconds_Behind_Source|Last_IO_Errno|Last_IO_Error|Last_SQL_Errno|Last_SQL_Error|Source_Server_Id|SQL_Delay|Replica_SQL_Running_State|Retrieved_Gtid_Set|Executed_Gtid_Set|Auto_Position|Channel_Name";
    let row = "Connecting to source|10.0.0.5|repl|3306|60|binlog.000003|1234|relay.000004|411|binlog.000003|Connecting|Yes|0||0|1234|620|NULL|2003|error connecting to master 'repl@10.0.0.5:3306' - retry-time: 60 retries: 3 message: Can't connect to MySQL server on '10.0.0.5:3306' (111)|0||1|0|Replica has read all relay log; waiting for more updates|3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4d22fb58-82db-22f2-af44-d91bba53a673:1-2|3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5|1|";
    let st = parse_slave_status(&table(header, &[row])).unwrap();
    assert_eq!(st.io_running, ThreadState::Connecting);
    assert_eq!(st.sql_running, ThreadState::Yes);
    assert_eq!(st.seconds_behind_master, None);
    assert_eq!(
        (st.master_host.as_str(), st.master_port),
        ("10.0.0.5", 3306)
    );
    assert_eq!(
        (st.read_master_log_pos, st.exec_master_log_pos),
        (1234, 1234)
    );
    assert_eq!(st.relay_master_log_file, "binlog.000003");
    assert_eq!(
        st.gtid_io_pos,
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4d22fb58-82db-22f2-af44-d91bba53a673:1-2"
    );
    assert_eq!(st.using_gtid, "1");
    assert_eq!(st.last_io_errno, 2003);
    assert!(st.last_io_error.contains("Can't connect"));
}

#[test]
fn thread_states() {
    assert_eq!(parse_thread_state("Yes"), ThreadState::Yes);
    assert_eq!(parse_thread_state("No"), ThreadState::No);
    assert_eq!(parse_thread_state("Connecting"), ThreadState::Connecting);
    assert_eq!(
        parse_thread_state("Preparing"),
        ThreadState::Other("Preparing".into())
    );
}

#[test]
fn binlog_status() {
    let header = "File|Position|Binlog_Do_DB|Binlog_Ignore_DB";
    assert_eq!(
        parse_binlog_status(&table(header, &["mysql-bin.000001|900||"])),
        Some(BinlogPosition {
            file: "mysql-bin.000001".into(),
            pos: 900
        })
    );
    // Binary logging off: empty result.
    assert_eq!(parse_binlog_status(&table(header, &[])), None);
    // MySQL 8.4 SHOW BINARY LOG STATUS adds Executed_Gtid_Set.
    let mysql = "File|Position|Binlog_Do_DB|Binlog_Ignore_DB|Executed_Gtid_Set";
    assert_eq!(
        parse_binlog_status(&table(mysql, &["binlog.000002|157|||"])).map(|b| b.pos),
        Some(157)
    );
}

#[test]
fn semi_sync_from_show_status_and_list() {
    let rows = [
        "Rpl_semi_sync_master_clients|2",
        "Rpl_semi_sync_master_get_ack|10",
        "Rpl_semi_sync_master_status|ON",
        "Rpl_semi_sync_slave_status|OFF",
    ];
    let s = parse_semi_sync_rows(&table("Variable_name|Value", &rows));
    assert_eq!(
        s,
        SemiSync {
            master_status: Some(true),
            master_clients: Some(2),
            slave_status: Some(false)
        }
    );
    // MySQL 8.0.26+ plugin names.
    let mysql = [
        "Rpl_semi_sync_source_clients|1",
        "Rpl_semi_sync_source_status|OFF",
    ];
    let s = parse_semi_sync_rows(&table("Variable_name|Value", &mysql));
    assert_eq!(s.master_status, Some(false));
    assert_eq!(s.master_clients, Some(1));
    assert_eq!(s.slave_status, None, "absent");
    // No plugin: nothing.
    assert_eq!(
        parse_semi_sync_rows(&table("Variable_name|Value", &[])),
        SemiSync::default()
    );
    // As MariaDB's GROUP_CONCAT over information_schema gives it.
    let s = parse_semi_sync_list(
        "RPL_SEMI_SYNC_MASTER_CLIENTS=0,RPL_SEMI_SYNC_MASTER_STATUS=OFF,RPL_SEMI_SYNC_SLAVE_STATUS=ON",
    );
    assert_eq!(
        s,
        SemiSync {
            master_status: Some(false),
            master_clients: Some(0),
            slave_status: Some(true)
        }
    );
}

#[test]
fn variables_of_mariadb_and_mysql() {
    let header = "read_only|server_id|version|log_bin|gtid_current_pos|gtid_slave_pos|gtid_binlog_pos|semi_sync|heartbeat_age_us";
    let v = parse_variables(&table(
        header,
        &["1|2|10.11.19-MariaDB-0+deb12u1-log|1|0-1-12|0-1-12|0-1-12|RPL_SEMI_SYNC_MASTER_CLIENTS=0,RPL_SEMI_SYNC_MASTER_STATUS=OFF,RPL_SEMI_SYNC_SLAVE_STATUS=OFF|183042"],
    ))
    .unwrap();
    assert_eq!(v.read_only, Some(true));
    assert_eq!(v.server_id, Some(2));
    assert_eq!(v.log_bin, Some(true));
    assert_eq!(v.gtid_slave_pos.as_deref(), Some("0-1-12"));
    assert_eq!(v.gtid_executed, None);
    assert_eq!(v.semi_sync.master_clients, Some(0));
    assert_eq!(v.heartbeat_age_us, Some(183_042));
    // A primary: empty slave pos, no heartbeat row yet.
    let v = parse_variables(&table(
        header,
        &["0|1|10.11.19-MariaDB-log|1|0-1-12||0-1-12|NULL|NULL"],
    ))
    .unwrap();
    assert_eq!(v.read_only, Some(false));
    assert_eq!(v.gtid_slave_pos.as_deref(), Some(""));
    assert_eq!(v.semi_sync, SemiSync::default());
    assert_eq!(v.heartbeat_age_us, None);

    let mysql = "read_only|server_id|version|log_bin|gtid_executed";
    let v = parse_variables(&table(
        mysql,
        &["0|1|8.0.36|1|3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4d22fb58-82db-22f2-af44-d91bba53a673:1-2"],
    ))
    .unwrap();
    assert_eq!(
        v.gtid_executed.as_deref(),
        Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4d22fb58-82db-22f2-af44-d91bba53a673:1-2")
    );
    assert_eq!(v.gtid_current_pos, None);
    assert!(parse_variables(&table(mysql, &[])).is_err());
}

#[test]
fn versions() {
    let v = parse_version("5.5.5-10.11.19-MariaDB-0+deb12u1-log");
    assert_eq!(v.flavour, Flavour::MariaDb);
    assert_eq!(v.number, (10, 11, 19));
    assert_eq!(parse_version("11.4.2-MariaDB").number, (11, 4, 2));
    let m = parse_version("8.0.36-0ubuntu0.22.04.1");
    assert_eq!(m.flavour, Flavour::MySql);
    assert_eq!(m.number, (8, 0, 36));
    assert!(m.at_least(8, 0, 22) && !m.at_least(8, 2, 0));
    assert_eq!(parse_version("8.4.0").number, (8, 4, 0));
    assert_eq!(parse_version("5.7.44-log").number, (5, 7, 44));
    assert_eq!(parse_version("garbage").number, (0, 0, 0));
}

#[test]
fn bools_and_lag() {
    assert_eq!(parse_bool("ON"), Some(true));
    assert_eq!(parse_bool("off"), Some(false));
    assert_eq!(parse_bool("1"), Some(true));
    assert_eq!(parse_bool("maybe"), None);
    assert_eq!(heartbeat_lag(1_500_000), Duration::from_millis(1500));
    assert_eq!(heartbeat_lag(-20), Duration::ZERO, "clock skew");
}
