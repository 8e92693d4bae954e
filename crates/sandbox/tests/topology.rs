//! Integration tests with real mariadbd processes (Debian's mariadb-server and -client).
//! Each test uses its own temp directory and free ports, so they run in parallel.

use std::time::{Duration, Instant};

use lagless_sandbox::{
    down, free_base_port, process, up, up_on_free_ports, GtidPos, LagAction, Manifest, Sandbox,
    UpOptions,
};

const WAIT: Duration = Duration::from_secs(20);

fn app_sql(sb: &Sandbox, server: &lagless_sandbox::Server, sql: &str) -> anyhow::Result<String> {
    let app = &sb.users().app;
    server.sql_as(&app.user, &app.password, sql, WAIT)
}

#[test]
fn up_replicates_to_every_replica_and_replicas_are_read_only() {
    let t = Instant::now();
    let sb = Sandbox::for_test(2).unwrap();
    eprintln!("1+2 up in {:?}", t.elapsed());
    assert_eq!(sb.replicas().len(), 2);
    assert_eq!(sb.replica(2).port(), sb.primary().port() + 2);
    app_sql(&sb, sb.primary(), "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO app.t VALUES (1, 'hello')").unwrap();
    for (i, r) in sb.replicas().iter().enumerate() {
        sb.wait_caught_up(i + 1, WAIT).unwrap();
        assert_eq!(
            app_sql(&sb, r, "SELECT v FROM app.t WHERE id = 1")
                .unwrap()
                .trim(),
            "hello"
        );
        let refused = app_sql(&sb, r, "INSERT INTO app.t VALUES (2, 'no')").unwrap_err();
        assert!(format!("{refused:#}").contains("1290"), "{refused:#}");
    }
    // The monitor user can read replication state; the manifest names every server.
    let admin = &sb.users().admin;
    let io = sb
        .replica(1)
        .sql_as(&admin.user, &admin.password, "SHOW SLAVE STATUS", WAIT)
        .unwrap();
    assert!(io.contains("Yes"));
    let m = Manifest::load(sb.dir()).unwrap().unwrap();
    let names: Vec<&str> = m.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["primary", "replica1", "replica2"]);
    assert!(m.servers.iter().all(|s| s.pid.is_some()));
    let st = sb.status();
    assert!(st.running);
    assert_eq!(st.servers[1].read_only, Some(true));
    assert_eq!(st.servers[0].read_only, Some(false));
    let json = serde_json::to_string(&st).unwrap();
    assert!(json.contains("\"lagless-admin\"") && json.contains("\"alive\":true"));
}

#[test]
fn up_twice_is_idempotent() {
    let sb = Sandbox::for_test(1).unwrap();
    let pids: Vec<_> = sb.servers().iter().map(|s| s.pid()).collect();
    let mut opts = UpOptions::new(sb.dir());
    opts.replicas = 1;
    opts.base_port = sb.primary().port();
    let t = Instant::now();
    let again = up(&opts).unwrap();
    eprintln!("up on a running sandbox: {:?}", t.elapsed());
    let again_pids: Vec<_> = again.servers().iter().map(|s| s.pid()).collect();
    assert_eq!(pids, again_pids);
    // Different settings while running: a clear error, nothing touched.
    opts.replicas = 2;
    let err = up(&opts).unwrap_err();
    assert!(format!("{err:#}").contains("different sandbox"), "{err:#}");
    assert!(sb.servers().iter().all(|s| s.is_alive()));
}

#[test]
fn killed_replica_restarts_and_catches_up() {
    let sb = Sandbox::for_test(1).unwrap();
    let (p, r) = (sb.primary(), sb.replica(1));
    p.sql("CREATE TABLE app.k (id INT PRIMARY KEY)").unwrap();
    // The replica applies the DDL before it is killed, so the kill only makes it miss the
    // INSERTs. Without this wait the test failed once in a loaded full run: after the restart
    // the replica applied nothing for 20 s (gtid_slave_pos empty). The likely cause, not
    // reproduced in 12 tries by hand: a DDL and its gtid_slave_pos row are not one
    // transaction, so a kill between the two leaves the table created and its GTID
    // unrecorded, and the SQL thread then stops on "table exists".
    sb.wait_caught_up(1, WAIT).unwrap();
    r.kill().unwrap();
    assert!(!r.is_alive());
    p.sql("INSERT INTO app.k VALUES (1), (2), (3)").unwrap();
    let t = Instant::now();
    r.restart().unwrap();
    sb.wait_caught_up(1, WAIT).unwrap();
    eprintln!("replica restart + catch-up: {:?}", t.elapsed());
    assert_eq!(r.scalar("SELECT COUNT(*) FROM app.k").unwrap(), "3");
    // Pause / resume: a paused server still counts as alive.
    r.pause().unwrap();
    assert!(r.is_paused() && r.is_alive());
    r.resume().unwrap();
    // The primary too: the replica reconnects by itself (MASTER_CONNECT_RETRY=1).
    p.kill().unwrap();
    p.restart().unwrap();
    p.sql("INSERT INTO app.k VALUES (4)").unwrap();
    sb.wait_caught_up(1, WAIT).unwrap();
    assert_eq!(r.scalar("SELECT COUNT(*) FROM app.k").unwrap(), "4");
}

#[test]
fn lag_stop_sql_falls_behind_by_gtid_and_resume_catches_up() {
    let sb = Sandbox::for_test(1).unwrap();
    let (p, r) = (sb.primary(), sb.replica(1));
    p.sql("CREATE TABLE app.l (id INT PRIMARY KEY)").unwrap();
    sb.wait_caught_up(1, WAIT).unwrap();
    let report = sb.lag(1, LagAction::StopSql).unwrap();
    assert_eq!(report.sql_running, "No");
    p.sql("INSERT INTO app.l VALUES (1); INSERT INTO app.l VALUES (2)")
        .unwrap();
    let target = p.gtid_binlog_pos().unwrap();
    // Received but not applied.
    let deadline = Instant::now() + WAIT;
    loop {
        let st = r.slave_status().unwrap().unwrap();
        if GtidPos::parse(&st.gtid_io_pos).unwrap().covers(&target) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "IO thread did not receive {target}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!r.gtid_slave_pos().unwrap().covers(&target));
    let report = sb.lag(1, LagAction::Resume).unwrap();
    assert_eq!(
        (report.io_running.as_str(), report.sql_running.as_str()),
        ("Yes", "Yes")
    );
    assert!(r.gtid_slave_pos().unwrap().covers(&target));
    // A delay is set and removed again.
    assert_eq!(sb.lag(1, LagAction::Delay(2)).unwrap().sql_delay, 2);
    p.sql("INSERT INTO app.l VALUES (3)").unwrap();
    assert_eq!(sb.lag(1, LagAction::Resume).unwrap().sql_delay, 0);
    assert_eq!(r.scalar("SELECT COUNT(*) FROM app.l").unwrap(), "3");
}

/// A primary and one replica in `dir` (ports still to be chosen).
fn one_replica_in(dir: &tempfile::TempDir) -> UpOptions {
    let mut opts = UpOptions::new(dir.path());
    opts.replicas = 1;
    opts
}

#[test]
fn down_stops_everything_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    // CI once saw a picked port held for over 2 s by something outside this process.
    let sb = up_on_free_ports(&mut one_replica_in(&dir), 3).unwrap();
    let pids: Vec<u32> = sb.servers().iter().filter_map(|s| s.pid()).collect();
    let run_root = sb.manifest().run_root;
    assert_eq!(pids.len(), 2);
    drop(sb); // not stop_on_drop: the servers keep running, as after `lagless sandbox up`
    assert!(pids.iter().all(|&p| process::is_running(p)));
    let report = down(dir.path()).unwrap();
    assert_eq!(report.stopped, pids);
    assert!(pids.iter().all(|&p| !process::is_running(p)));
    assert!(!run_root.exists());
    assert!(Manifest::load(dir.path()).unwrap().is_none());
    let again = down(dir.path()).unwrap();
    assert!(again.stopped.is_empty());
    assert!(!lagless_sandbox::status(dir.path()).unwrap().exists);
}

#[test]
fn stale_pidfiles_after_kill_9_are_recovered() {
    let sb = Sandbox::for_test(2).unwrap();
    sb.primary()
        .sql("CREATE TABLE app.s (id INT PRIMARY KEY); INSERT INTO app.s VALUES (7)")
        .unwrap();
    sb.wait_replicating(WAIT).unwrap();
    for s in sb.servers() {
        s.kill().unwrap();
    }
    assert!(!sb.status().running);
    let mut opts = UpOptions::new(sb.dir());
    opts.replicas = 2;
    opts.base_port = sb.primary().port();
    let t = Instant::now();
    let again = up(&opts).unwrap();
    eprintln!("recovery of 1+2 after kill -9: {:?}", t.elapsed());
    assert!(again.status().running);
    // Same datadirs: the row survived, and replication still flows.
    again.primary().sql("INSERT INTO app.s VALUES (8)").unwrap();
    again.wait_replicating(WAIT).unwrap();
    for r in again.replicas() {
        assert_eq!(r.scalar("SELECT COUNT(*) FROM app.s").unwrap(), "2");
    }
}

#[test]
fn semi_sync_counts_its_replicas() {
    let sb = Sandbox::for_test_with(2, |o| o.semi_sync = true).unwrap();
    let clients = |sb: &Sandbox| {
        sb.primary()
            .sql("SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'")
            .unwrap()
    };
    let deadline = Instant::now() + WAIT;
    while !clients(&sb).trim().ends_with('2') {
        assert!(Instant::now() < deadline, "{}", clients(&sb));
        std::thread::sleep(Duration::from_millis(10));
    }
    let w = sb
        .primary()
        .scalar("SELECT @@rpl_semi_sync_master_wait_point")
        .unwrap();
    assert_eq!(w, "AFTER_SYNC");
}

/// A port taken by another process fails the start with [`lagless_sandbox::PortInUse`] (the
/// test harness retries on another range when it sees one), and leaves nothing running.
#[test]
fn a_taken_port_fails_the_start_with_port_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = one_replica_in(&dir);
    opts.base_port = free_base_port(2).unwrap();
    opts.stop_on_drop = true;
    let _taken = std::net::TcpListener::bind(("127.0.0.1", opts.base_port + 1)).unwrap();
    let err = up(&opts).unwrap_err();
    let port_in_use = err
        .chain()
        .find_map(|c| c.downcast_ref::<lagless_sandbox::PortInUse>())
        .unwrap_or_else(|| panic!("not PortInUse: {err:#}"));
    assert_eq!(port_in_use.port, opts.base_port + 1);
    assert_eq!(port_in_use.server, "replica1");
    assert!(
        lagless_sandbox::layout::port_free(opts.base_port),
        "the primary it started is stopped"
    );
}
