//! Failover against real servers: one sandbox (1 primary + 2 replicas) per test, monitored with
//! a 100 ms interval and 300 ms timeouts, acted on as the sandbox's admin user.
//!
//! - a killed primary (semi-sync): detected, the replica holding every acknowledged transaction
//!   promoted although priorities prefer the other, the other repointed, writes flow; the old
//!   primary restarted, fenced and rejoined;
//! - a paused (SIGSTOP) primary: detected once the replicas notice (`slave_net_timeout = 1`);
//! - a busy primary (CPU-bound queries on two connections): never declared failed;
//! - two callers racing under the failover lock: exactly one promotes (the candidate's SQL
//!   thread, stopped by hand, is restarted and caught up first); the old primary, given an
//!   errant write, is quarantined with that GTID;
//! - a candidate whose SQL thread is stuck on a table lock: promoted after the apply timeout,
//!   the discarded transactions reported, and exactly those found on the old primary;
//! - a switchover under a write load: zero lost writes, the write pause measured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lagless_backend::{login, BackendError, Login, LoginOptions};
use lagless_protocol::consts::{CLIENT_DEPRECATE_EOF, CLIENT_LONG_FLAG, UTF8MB4_GENERAL_CI};
use lagless_routing::gtid::MariaGtid;
use lagless_sandbox::{Sandbox, Server};
use lagless_topology::failover::{
    choose_candidate, failover, fence, primary_failed, rejoin, switchover, with_failover_lock,
    Account, DetectionPolicy, FailoverOptions, Failure, Locked, Member, RejoinOutcome, Verdict,
};
use lagless_topology::{spawn, MonitorConfig, MonitoredServer, Snapshot};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

struct Monitor {
    rx: watch::Receiver<Arc<Snapshot>>,
    history: Vec<Arc<Snapshot>>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Monitor {
    /// The monitor as the proxy would run it for fast failover: 100 ms interval, 300 ms
    /// timeouts.
    fn start(sb: &Sandbox) -> Monitor {
        let admin = &sb.users().admin;
        let mut config = MonitorConfig::new(servers(sb), &admin.user, &admin.password);
        config.interval = Duration::from_millis(100);
        config.timeout = Duration::from_millis(300);
        config.connect_timeout = Duration::from_millis(300);
        let shutdown = CancellationToken::new();
        let (rx, task) = spawn(config, shutdown.clone());
        Monitor {
            rx,
            history: Vec::new(),
            shutdown,
            task,
        }
    }

    /// Waits for the next snapshot and keeps it (the last 200) in `history`.
    async fn next(&mut self, deadline: Instant, what: &str) -> Arc<Snapshot> {
        match timeout_at(deadline, self.rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("monitor ended while waiting for {what}"),
            Err(_) => panic!(
                "no {what} in time; last snapshot: {:#?}",
                self.history.last()
            ),
        }
        let snap = self.rx.borrow_and_update().clone();
        if self.history.len() == 200 {
            self.history.remove(0);
        }
        self.history.push(snap.clone());
        snap
    }

    /// Waits until every server was probed and answered, and the replicas receive.
    async fn until_healthy(&mut self) -> Arc<Snapshot> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let snap = self.next(deadline, "healthy snapshot").await;
            let healthy = snap.servers.iter().all(|o| {
                o.reachable
                    && o.replication
                        .as_ref()
                        .is_none_or(|st| st.is_running() && st.last_io_errno == 0)
            });
            if healthy {
                return snap;
            }
        }
    }

    /// Waits until every server was probed and answered.
    async fn until_reachable(&mut self) -> Arc<Snapshot> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let snap = self.next(deadline, "every server reachable").await;
            if snap.round >= 1 && snap.servers.iter().all(|o| o.reachable) {
                return snap;
            }
        }
    }

    /// Waits until the primary is declared failed.
    async fn until_failed(&mut self, within: Duration) -> (Failure, Arc<Snapshot>) {
        let deadline = Instant::now() + within;
        loop {
            let snap = self.next(deadline, "failed primary").await;
            let verdict = primary_failed(
                &self.history,
                "primary",
                &DetectionPolicy::default(),
                Instant::now(),
            );
            if let Verdict::Failed(f) = verdict {
                return (f, snap);
            }
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("monitor stops promptly")
            .expect("monitor task");
    }
}

fn address(s: &Server) -> String {
    format!("{}:{}", s.host(), s.port())
}

fn servers(sb: &Sandbox) -> Vec<MonitoredServer> {
    sb.servers()
        .iter()
        .enumerate()
        .map(|(i, s)| MonitoredServer::new(0, i, s.name(), address(s)))
        .collect()
}

fn members(sb: &Sandbox) -> Vec<Member> {
    sb.servers()
        .iter()
        .map(|s| Member::new(s.name(), address(s)))
        .collect()
}

fn member(s: &Server) -> Member {
    Member::new(s.name(), address(s))
}

fn options(sb: &Sandbox) -> FailoverOptions {
    let u = sb.users();
    FailoverOptions::new(
        Account::new(&u.admin.user, &u.admin.password),
        Account::new(&u.replication.user, &u.replication.password),
    )
}

/// Runs a blocking sandbox call without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn count(s: &Server, table: &str) -> u64 {
    s.scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits until `s` has `n` rows in `table`.
fn wait_rows(s: &Server, table: &str, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let have = count(s, table);
        if have == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} has {have} rows in {table}, want {n}; replication: {:?}",
            s.name(),
            s.slave_status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until each of `replicas` received everything `primary` has (by its IO thread).
fn wait_received(replicas: &[&Server], primary: &Server) {
    let want = primary.gtid_binlog_pos().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for r in replicas {
        loop {
            let st = r.slave_status().unwrap().unwrap();
            if lagless_sandbox::GtidPos::parse(&st.gtid_io_pos)
                .unwrap()
                .covers(&want)
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{}: {st:?}", r.name());
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Asserts that `s` replicates from `primary` with both threads running.
fn assert_replicates_from(s: &Server, primary: &Server) {
    let st = s.slave_status().unwrap().expect("replication configured");
    assert!(st.running(), "{}: {st:?}", s.name());
    assert_eq!(st.master_port, primary.port(), "{}: {st:?}", s.name());
}

/// Asserts that `s` is a primary: writable, replicating from nobody.
fn assert_primary(s: &Server) {
    assert_eq!(s.scalar("SELECT @@read_only").unwrap(), "0");
    assert_eq!(s.slave_status().unwrap(), None);
}

fn status_var(s: &Server, name: &str) -> String {
    s.scalar(&format!(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{name}'"
    ))
    .unwrap()
}

async fn connect(s: &Server, user: &str, password: &str) -> Result<Login, BackendError> {
    login(&LoginOptions {
        addr: address(s),
        user: user.into(),
        password: password.into(),
        database: Some("app".into()),
        capabilities: CLIENT_LONG_FLAG | CLIENT_DEPRECATE_EOF,
        charset: UTF8MB4_GENERAL_CI,
        connect_attrs: vec![],
        connect_timeout: Duration::from_secs(2),
        max_packet: 1 << 24,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_semi_sync_primary_fails_over_without_losing_acknowledged_writes_and_rejoins() {
    let sb = blocking(|| Sandbox::for_test_with(2, |o| o.semi_sync = true)).unwrap();
    let (p, r1, r2) = (sb.primary(), sb.replica(1), sb.replica(2));
    blocking(|| {
        p.sql("CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1)")
            .unwrap();
        sb.wait_replicating(Duration::from_secs(10)).unwrap();
        // replica2 stops receiving: the next writes are acknowledged by replica1 alone.
        r2.sql("STOP SLAVE IO_THREAD").unwrap();
        p.sql("INSERT INTO app.t VALUES (2), (3); INSERT INTO app.t VALUES (4)")
            .unwrap();
        assert_eq!(status_var(p, "Rpl_semi_sync_master_status"), "ON");
        sb.wait_caught_up(1, Duration::from_secs(5)).unwrap();
    });
    let mut m = Monitor::start(&sb);
    m.until_reachable().await;

    let killed = Instant::now();
    blocking(|| p.kill()).unwrap();
    let (failure, snap) = m.until_failed(Duration::from_secs(5)).await;
    let detected = killed.elapsed();
    m.stop().await;
    assert_eq!(failure.confirmed_by, ["replica1", "replica2"]);

    // replica2 is preferred, but lacks the acknowledged 0-1-3 and 0-1-4.
    let candidate = choose_candidate(&snap.servers, &[("replica2", 100)], &[]).unwrap();
    assert_eq!(candidate.name, "replica1", "{candidate:?}");
    let mut opts = options(&sb);
    opts.semi_sync = true;
    let report = failover(&snap.servers, &candidate, &opts).await.unwrap();
    let done = killed.elapsed();
    eprintln!("{report}");
    eprintln!(
        "kill -> detected {detected:.1?} -> writable {:.1?} (failover() {:.1?}) -> replicas repointed {done:.1?}",
        detected + report.promoted_after,
        report.promoted_after,
    );
    assert!(report.apply.caught_up, "{report}");
    assert_eq!(report.new_primary, "replica1");
    assert_eq!(report.unreachable, ["primary"]);
    assert_eq!(report.repointed.len(), 1);
    assert_eq!(report.repointed[0].error, None, "{report}");
    assert!(
        report.gtid_binlog_pos.to_string().starts_with("0-1-"),
        "{report}"
    );

    blocking(|| {
        assert_primary(r1);
        assert_replicates_from(r2, r1);
        r1.sql("INSERT INTO app.t VALUES (5)").unwrap();
        wait_rows(r2, "app.t", 5);
        // The new primary runs semi-sync, with replica2 acknowledging.
        assert_eq!(status_var(r1, "Rpl_semi_sync_master_status"), "ON");
        assert_eq!(status_var(r1, "Rpl_semi_sync_master_clients"), "1");
    });

    // The old primary comes back writable (its option file has no read_only): fence, rejoin.
    blocking(|| p.start()).unwrap();
    assert_eq!(blocking(|| p.scalar("SELECT @@read_only")).unwrap(), "0");
    let fenced = fence(&member(p), &opts).await.unwrap();
    assert_eq!(blocking(|| p.scalar("SELECT @@read_only")).unwrap(), "1");
    let rejoined = rejoin(&member(p), &member(r1), &opts).await.unwrap();
    eprintln!(
        "fence {:.1?}, rejoin {:.1?}: {:?}",
        fenced.took, rejoined.took, rejoined.outcome
    );
    assert_eq!(rejoined.outcome, RejoinOutcome::Rejoined);
    blocking(|| {
        assert_replicates_from(p, r1);
        wait_rows(p, "app.t", 5);
        r1.sql("INSERT INTO app.t VALUES (6)").unwrap();
        wait_rows(p, "app.t", 6);
        wait_rows(r2, "app.t", 6);
        assert_eq!(p.scalar("SELECT @@read_only").unwrap(), "1");
    });
}

/// Resumes a paused server when dropped, so that a failing test does not leave it stopped.
struct Resume<'a>(&'a Server);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        let _ = self.0.resume();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_primary_is_detected_once_the_replicas_notice() {
    let sb = blocking(|| Sandbox::for_test(2)).unwrap();
    blocking(|| {
        for r in sb.replicas() {
            // A stalled primary is noticed by a replica after slave_net_timeout without an
            // event; the heartbeat keeps an idle primary from looking stalled.
            r.sql(
                "STOP SLAVE; SET GLOBAL slave_net_timeout = 1; \
                 CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 0.5; START SLAVE",
            )
            .unwrap();
        }
        sb.wait_replicating(Duration::from_secs(10)).unwrap();
    });
    let mut m = Monitor::start(&sb);
    m.until_healthy().await;
    // An idle primary with these settings stays alive for a while.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        m.next(deadline + Duration::from_secs(1), "snapshot").await;
        let v = primary_failed(
            &m.history,
            "primary",
            &DetectionPolicy::default(),
            Instant::now(),
        );
        assert_eq!(v, Verdict::Alive);
    }

    let p = sb.primary();
    let _resume = Resume(p);
    let paused = Instant::now();
    blocking(|| p.pause()).unwrap();
    let (failure, _) = m.until_failed(Duration::from_secs(6)).await;
    let detected = paused.elapsed();
    eprintln!("pause -> detected {detected:.1?}: {failure:?}");
    assert_eq!(failure.confirmed_by, ["replica1", "replica2"]);
    assert!(detected >= Duration::from_millis(300), "{detected:?}");

    blocking(|| p.resume()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        m.next(deadline, "primary alive again").await;
        let v = primary_failed(
            &m.history,
            "primary",
            &DetectionPolicy::default(),
            Instant::now(),
        );
        if v == Verdict::Alive {
            break;
        }
    }
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_primary_is_not_declared_failed() {
    let sb = blocking(|| Sandbox::for_test(2)).unwrap();
    let mut m = Monitor::start(&sb);
    m.until_healthy().await;
    let admin = &sb.users().admin;
    let stop_at = Instant::now() + Duration::from_secs(2);
    let mut burners = Vec::new();
    for _ in 0..2 {
        let mut c = connect(sb.primary(), &admin.user, &admin.password)
            .await
            .unwrap();
        burners.push(tokio::spawn(async move {
            let mut queries = 0;
            while Instant::now() < stop_at {
                // Aborted after 1 s by the server (error 1969) if it runs that long.
                let _ = c
                    .query(
                        "SET STATEMENT max_statement_time = 1 FOR \
                         SELECT BENCHMARK(50000000, MD5('x'))",
                    )
                    .await;
                queries += 1;
            }
            queries
        }));
    }
    let (mut snapshots, mut unreachable, mut worst_rtt) = (0, 0, Duration::ZERO);
    let deadline = stop_at + Duration::from_millis(300);
    while Instant::now() < deadline {
        let snap = m.next(deadline + Duration::from_secs(1), "snapshot").await;
        let p = snap.by_name("primary").unwrap();
        snapshots += 1;
        unreachable += u32::from(!p.reachable);
        worst_rtt = worst_rtt.max(p.rtt.unwrap_or_default());
        let v = primary_failed(
            &m.history,
            "primary",
            &DetectionPolicy::default(),
            Instant::now(),
        );
        assert!(!v.is_failed(), "busy primary declared failed: {v:?}");
    }
    let mut queries = 0;
    for b in burners {
        queries += b.await.unwrap();
    }
    eprintln!(
        "busy primary ({queries} BENCHMARK queries on 2 connections for 2 s): {snapshots} snapshots, \
         {unreachable} with the primary unreachable, worst probe round trip {worst_rtt:.1?}; never failed"
    );
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_callers_promote_once_and_an_errant_old_primary_is_quarantined() {
    let sb = blocking(|| Sandbox::for_test(2)).unwrap();
    let (p, r1, r2) = (sb.primary(), sb.replica(1), sb.replica(2));
    blocking(|| {
        p.sql("CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1), (2)")
            .unwrap();
        sb.wait_replicating(Duration::from_secs(10)).unwrap();
    });
    let mut m = Monitor::start(&sb);
    m.until_healthy().await;
    blocking(|| {
        // The replicas receive row 3 but do not apply it (SQL threads stopped by hand): the
        // failover starts the candidate's SQL thread and waits for it.
        for r in [r1, r2] {
            r.sql("STOP SLAVE SQL_THREAD").unwrap();
        }
        p.sql("INSERT INTO app.t VALUES (3)").unwrap();
        wait_received(&[r1, r2], p);
        p.kill().unwrap();
    });
    let (_, snap) = m.until_failed(Duration::from_secs(5)).await;
    m.stop().await;

    // Two proxies at the same moment that chose different candidates (as proxies that saw
    // different positions would): the majority lock lets only one act.
    let opts = options(&sb);
    let all = members(&sb);
    let race = |excluded: &'static str| {
        let (all, opts, snap) = (&all, &opts, &snap);
        async move {
            let candidate = choose_candidate(&snap.servers, &[], &[excluded]).unwrap();
            assert_ne!(candidate.name, excluded);
            with_failover_lock(all, "primary", &candidate.member(), opts, || {
                failover(&snap.servers, &candidate, opts)
            })
            .await
            .unwrap()
        }
    };
    let (a, b) = tokio::join!(race("replica2"), race("replica1"));
    let (mut promoted, mut found) = (Vec::new(), Vec::new());
    for outcome in [a, b] {
        match outcome {
            Locked::Ran(Ok(report)) => {
                eprintln!("{report}");
                assert!(report.apply.caught_up, "{report}");
                promoted.push(report.new_primary);
            }
            Locked::Ran(Err(e)) => panic!("failover failed: {e}"),
            Locked::AlreadyPromoted { primary } => found.push(primary),
        }
    }
    assert_eq!(
        promoted.len(),
        1,
        "one promotion: {promoted:?}, found {found:?}"
    );
    assert_eq!(
        found, promoted,
        "the other caller found the promoted primary"
    );
    let winner = promoted[0].clone();
    let (np, other) = if winner == "replica1" {
        (r1, r2)
    } else {
        (r2, r1)
    };
    // A third caller after the fact does nothing either.
    let late = choose_candidate(&snap.servers, &[], &[]).unwrap();
    let outcome = with_failover_lock(&all, "primary", &late.member(), &opts, || async {
        unreachable!("the late caller must not act")
    })
    .await
    .unwrap();
    assert_eq!(
        outcome,
        Locked::<()>::AlreadyPromoted {
            primary: winner.clone()
        }
    );
    blocking(|| {
        assert_primary(np);
        assert_eq!(count(np, "app.t"), 3);
        assert_replicates_from(other, np);
        np.sql("INSERT INTO app.t VALUES (4)").unwrap();
        wait_rows(other, "app.t", 4);
    });

    // The old primary comes back; before it is fenced, something writes to it.
    let errant = blocking(|| {
        p.start().unwrap();
        p.sql("INSERT INTO app.t VALUES (100); SELECT @@last_gtid")
            .unwrap()
    });
    let errant = MariaGtid::parse(errant.trim()).unwrap();
    fence(&member(p), &opts).await.unwrap();
    let report = rejoin(&member(p), &member(np), &opts).await.unwrap();
    eprintln!(
        "errant {errant}: {:?} (old {}, new {})",
        report.outcome, report.old_position, report.new_position
    );
    let RejoinOutcome::Quarantined { errant: ranges } = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    assert!(ranges.iter().any(|r| r.contains(errant)), "{ranges:?}");
    // Contained by sequence number, yet errant: the new primary has other transactions there.
    assert!(report.new_position.contains(&errant.into()));
    blocking(|| {
        assert_eq!(p.scalar("SELECT @@read_only").unwrap(), "1");
        assert_eq!(p.slave_status().unwrap(), None);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_under_write_load_loses_no_write() {
    let sb = Arc::new(blocking(|| Sandbox::for_test(2)).unwrap());
    let (p, r1, r2) = (sb.primary(), sb.replica(1), sb.replica(2));
    blocking(|| {
        p.sql("CREATE TABLE app.w (id INT PRIMARY KEY)").unwrap();
        sb.wait_replicating(Duration::from_secs(10)).unwrap();
    });
    let mut m = Monitor::start(&sb);
    let snap = m.until_healthy().await;
    m.stop().await;

    // A writer that, like the proxy, retries a refused write until a primary takes it.
    let target = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (sb, target, stop) = (sb.clone(), target.clone(), stop.clone());
        tokio::spawn(async move {
            let app = sb.users().app.clone();
            let (mut acked, mut refused, mut worst_gap) = (0u64, 0u64, Duration::ZERO);
            let mut last_ack = Instant::now();
            let mut conn: Option<(usize, Login)> = None;
            while !stop.load(Ordering::Relaxed) {
                let want = *target.lock().unwrap();
                if conn.as_ref().is_none_or(|(i, _)| *i != want) {
                    conn = connect(&sb.servers()[want], &app.user, &app.password)
                        .await
                        .ok()
                        .map(|c| (want, c));
                }
                let Some((_, c)) = conn.as_mut() else {
                    sleep(Duration::from_millis(2)).await;
                    continue;
                };
                let sql = format!("INSERT INTO w VALUES ({})", acked + 1);
                match c.query_ok(&sql).await {
                    // 1062: committed before a lost answer.
                    Ok(_) | Err(BackendError::Server { code: 1062, .. }) => {
                        acked += 1;
                        worst_gap = worst_gap.max(last_ack.elapsed());
                        last_ack = Instant::now();
                    }
                    // 1290: read-only; the write did not happen.
                    Err(BackendError::Server { code: 1290, .. }) => {
                        refused += 1;
                        sleep(Duration::from_millis(1)).await;
                    }
                    Err(e) => panic!("write {}: {e}", acked + 1),
                }
            }
            (acked, refused, worst_gap)
        })
    };

    sleep(Duration::from_millis(400)).await;
    let mut opts = options(&sb);
    // Writes go to the new primary as soon as it is writable, as the proxy would send them.
    let redirect = target.clone();
    opts.on_promoted = Some(Arc::new(move |m: &Member| {
        assert_eq!(m.name, "replica1");
        *redirect.lock().unwrap() = 1;
    }));
    let report = switchover(&snap.servers, "primary", "replica1", &opts)
        .await
        .unwrap();
    assert_eq!(*target.lock().unwrap(), 1);
    sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, refused, worst_gap) = writer.await.unwrap();
    eprintln!("{report}");
    eprintln!(
        "switchover: write pause {:.1?} (writer's longest gap between acks {worst_gap:.1?}, \
         {refused} refused writes retried), {acked} writes acknowledged",
        report.write_pause
    );
    assert_eq!(report.old_primary_outcome, Ok(RejoinOutcome::Rejoined));
    assert_eq!(report.repointed.len(), 1);
    assert_eq!(report.repointed[0].error, None, "{report}");
    assert!(acked > 10, "{acked}");
    blocking(|| {
        assert_primary(r1);
        assert_replicates_from(r2, r1);
        assert_replicates_from(p, r1);
        // Every acknowledged write is on the new primary, once, and nothing else.
        assert_eq!(count(r1, "app.w"), acked);
        assert_eq!(
            r1.scalar("SELECT MAX(id) FROM app.w").unwrap(),
            acked.to_string()
        );
        wait_rows(r2, "app.w", acked);
        wait_rows(p, "app.w", acked);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_that_cannot_apply_in_time_is_promoted_and_the_loss_reported() {
    let sb = blocking(|| Sandbox::for_test(1)).unwrap();
    let (p, r1) = (sb.primary(), sb.replica(1));
    blocking(|| {
        p.sql("CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1)")
            .unwrap();
        sb.wait_replicating(Duration::from_secs(10)).unwrap();
    });
    // The replica's SQL thread is blocked on a table lock: it receives and cannot apply.
    let admin = &sb.users().admin;
    let mut lock = connect(r1, &admin.user, &admin.password).await.unwrap();
    lock.query_ok("LOCK TABLES app.t WRITE").await.unwrap();
    let mut m = Monitor::start(&sb);
    m.until_healthy().await;
    blocking(|| {
        p.sql("INSERT INTO app.t VALUES (2); INSERT INTO app.t VALUES (3)")
            .unwrap();
        wait_received(&[r1], p);
        p.kill().unwrap();
    });
    let (_, snap) = m.until_failed(Duration::from_secs(5)).await;
    m.stop().await;
    let candidate = choose_candidate(&snap.servers, &[], &[]).unwrap();
    let mut opts = options(&sb);
    opts.apply_timeout = Duration::from_millis(300);
    let report = failover(&snap.servers, &candidate, &opts).await.unwrap();
    eprintln!("{report}");
    assert!(!report.apply.caught_up);
    assert!(report.apply.waited >= Duration::from_millis(300));
    let lost = report.apply.unapplied.clone();
    assert_eq!(
        lost.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["0-1-3..0-1-4"]
    );
    drop(lock);
    blocking(|| {
        assert_primary(r1);
        assert_eq!(count(r1, "app.t"), 1);
    });
    // The old primary has exactly those transactions beyond the new primary's history.
    blocking(|| p.start()).unwrap();
    let rejoined = rejoin(&member(p), &member(r1), &opts).await.unwrap();
    assert_eq!(
        rejoined.outcome,
        RejoinOutcome::Quarantined { errant: lost },
        "{:?} {:?}",
        rejoined.old_position,
        rejoined.new_position
    );
}
