//! The monitor against real servers: a sandbox of one primary and two replicas per test (own
//! temp directory and ports, so the tests run in parallel), monitored as the sandbox's admin
//! user with the default interval (250 ms) and timeouts (1 s).

use std::sync::Arc;
use std::time::Duration;

use lagless_sandbox::{LagAction, Sandbox};
use lagless_topology::{
    spawn, Flavour, HeartbeatConfig, MonitorConfig, MonitoredServer, ServerObservation, Snapshot,
    ThreadState,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Slack for scheduling on a loaded 2-core machine (other test binaries run alongside).
const MARGIN: Duration = Duration::from_millis(500);

struct Monitor {
    rx: watch::Receiver<Arc<Snapshot>>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    config: MonitorConfig,
}

impl Monitor {
    fn start(sb: &Sandbox, heartbeat: bool) -> Monitor {
        let servers = sb
            .servers()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                MonitoredServer::new(0, i, s.name(), format!("{}:{}", s.host(), s.port()))
            })
            .collect();
        let admin = &sb.users().admin;
        let mut config = MonitorConfig::new(servers, &admin.user, &admin.password);
        if heartbeat {
            config.heartbeat = Some(HeartbeatConfig::default());
        }
        let shutdown = CancellationToken::new();
        let (rx, task) = spawn(config.clone(), shutdown.clone());
        Monitor {
            rx,
            shutdown,
            task,
            config,
        }
    }

    /// The first snapshot (now or later) that satisfies `ok`.
    async fn wait_for(
        &mut self,
        within: Duration,
        what: &str,
        ok: impl Fn(&Snapshot) -> bool,
    ) -> Arc<Snapshot> {
        let deadline = Instant::now() + within;
        loop {
            let snap = self.rx.borrow_and_update().clone();
            if ok(&snap) {
                return snap;
            }
            match tokio::time::timeout_at(deadline, self.rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("monitor ended while waiting for {what}"),
                Err(_) => panic!("no snapshot with {what} within {within:?}; last: {snap:#?}"),
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

/// Runs a blocking sandbox call without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn server<'a>(s: &'a Snapshot, name: &str) -> &'a ServerObservation {
    s.by_name(name)
        .unwrap_or_else(|| panic!("{name} not in snapshot"))
}

fn all_reachable(s: &Snapshot) -> bool {
    s.round >= 1 && s.servers.iter().all(|o| o.reachable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_positions_stopped_sql_thread_and_killed_primary() {
    let sb = blocking(|| Sandbox::for_test(2)).unwrap();
    let t = Instant::now();
    let mut m = Monitor::start(&sb, false);
    let first = m
        .wait_for(
            Duration::from_secs(1),
            "every server reachable",
            all_reachable,
        )
        .await;
    eprintln!("first full snapshot after {:?}", t.elapsed());
    let rtts: Vec<_> = first.servers.iter().map(|o| o.rtt.unwrap()).collect();
    eprintln!("round trip of the variables SELECT: {rtts:?}");

    let p = server(&first, "primary");
    assert_eq!(p.read_only, Some(false));
    assert_eq!(p.replication, None);
    assert_eq!(p.server_id, Some(sb.primary().server_id()));
    assert_eq!(p.flavour, Some(Flavour::MariaDb));
    assert!(p.version.as_deref().unwrap().contains("MariaDB"));
    assert!(p.binlog.as_ref().is_some_and(|b| b.pos > 0), "{p:?}");
    assert_eq!(p.gtid_slave_pos.as_deref(), Some(""));
    assert_eq!(p.semi_sync.master_status, Some(false));
    assert_eq!(p.heartbeat_lag, None);
    assert!(p.error.is_none(), "{p:?}");
    assert!(p.rtt.is_some_and(|r| r < Duration::from_secs(1)));
    for name in ["replica1", "replica2"] {
        let r = server(&first, name);
        assert_eq!(r.read_only, Some(true), "{r:?}");
        let st = r.replication.as_ref().expect("replicating");
        assert_eq!(st.io_running, ThreadState::Yes, "{st:?}");
        assert_eq!(st.sql_running, ThreadState::Yes, "{st:?}");
        assert_eq!(st.master_port, sb.primary().port());
        assert_eq!(st.using_gtid, "Slave_Pos");
        assert!(r.error.is_none(), "{r:?}");
    }

    // A write reaches both replicas, as the monitor sees it.
    blocking(|| {
        sb.primary()
            .sql("CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1)")
    })
    .unwrap();
    let target = blocking(|| sb.primary().gtid_binlog_pos())
        .unwrap()
        .to_string();
    let t = Instant::now();
    let caught_up = m
        .wait_for(
            Duration::from_secs(3),
            "replicas at the primary's position",
            |s| {
                let p = server(s, "primary");
                p.gtid_binlog_pos.as_deref() == Some(&target)
                    && ["replica1", "replica2"]
                        .iter()
                        .all(|r| server(s, r).gtid_slave_pos.as_deref() == Some(&target))
            },
        )
        .await;
    eprintln!(
        "write {target} seen applied everywhere after {:?}",
        t.elapsed()
    );
    let current: Vec<_> = caught_up
        .servers
        .iter()
        .map(|o| o.gtid_current_pos.clone())
        .collect();
    assert!(
        current.iter().all(|c| c.as_deref() == Some(&target)),
        "{current:?}"
    );

    // replica1 stops applying: SQL thread No, Seconds_Behind_Master NULL.
    blocking(|| sb.lag(1, LagAction::StopSql)).unwrap();
    let t = Instant::now();
    m.wait_for(
        Duration::from_secs(2),
        "replica1's SQL thread stopped",
        |s| {
            server(s, "replica1")
                .replication
                .as_ref()
                .is_some_and(|st| {
                    st.sql_running == ThreadState::No && st.seconds_behind_master.is_none()
                })
        },
    )
    .await;
    eprintln!("stopped SQL thread seen after {:?}", t.elapsed());
    blocking(|| {
        sb.primary()
            .sql("INSERT INTO app.t VALUES (2); INSERT INTO app.t VALUES (3)")
    })
    .unwrap();
    let ahead = blocking(|| sb.primary().gtid_binlog_pos())
        .unwrap()
        .to_string();
    let behind = m
        .wait_for(
            Duration::from_secs(3),
            "replica1 received but not applied",
            |s| {
                let r = server(s, "replica1");
                r.replication
                    .as_ref()
                    .is_some_and(|st| st.gtid_io_pos == ahead)
                    && server(s, "replica2").gtid_slave_pos.as_deref() == Some(&ahead)
            },
        )
        .await;
    let r1 = server(&behind, "replica1");
    let st = r1.replication.as_ref().unwrap();
    assert_eq!(
        r1.gtid_slave_pos.as_deref(),
        Some(target.as_str()),
        "applied nothing new"
    );
    assert_ne!(st.gtid_io_pos, target);
    assert_eq!(st.io_running, ThreadState::Yes);
    assert_eq!(st.master_log_file, st.relay_master_log_file);
    assert!(
        st.read_master_log_pos > st.exec_master_log_pos,
        "read {} exec {}",
        st.read_master_log_pos,
        st.exec_master_log_pos
    );

    // The primary is killed: unreachable within one interval plus the timeout.
    let t = Instant::now();
    blocking(|| sb.primary().kill()).unwrap();
    let bound = m.config.interval + m.config.timeout + MARGIN;
    let down = m
        .wait_for(bound, "primary unreachable", |s| {
            !server(s, "primary").reachable
        })
        .await;
    eprintln!(
        "killed primary reported unreachable after {:?}",
        t.elapsed()
    );
    let p = server(&down, "primary");
    assert!(p.consecutive_failures >= 1);
    assert!(p.error.is_some());
    assert_eq!(p.read_only, None);
    assert!(server(&down, "replica2").reachable);
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_replica_is_unreachable_within_the_timeout_and_others_stay_on_time() {
    let sb = blocking(|| Sandbox::for_test(2)).unwrap();
    let mut m = Monitor::start(&sb, false);
    m.wait_for(
        Duration::from_secs(1),
        "every server reachable",
        all_reachable,
    )
    .await;
    let interval = m.config.interval;

    let t = Instant::now();
    blocking(|| sb.replica(2).pause()).unwrap();
    // Until replica2 is reported down and for a second after, every snapshot must show the
    // primary and replica1 reachable and freshly observed, and snapshots must keep coming.
    let detect_bound = interval + m.config.timeout + MARGIN;
    let mut detected: Option<Instant> = None;
    let mut last_taken = t;
    let (mut worst_age, mut worst_gap) = (Duration::ZERO, Duration::ZERO);
    let mut snapshots = 0;
    loop {
        let within = match detected {
            None => detect_bound.saturating_sub(t.elapsed()),
            Some(at) => (at + Duration::from_secs(1)).saturating_duration_since(Instant::now()),
        };
        if within.is_zero() {
            break;
        }
        let s = match tokio::time::timeout(within, m.rx.changed()).await {
            Ok(r) => {
                r.unwrap();
                m.rx.borrow_and_update().clone()
            }
            Err(_) if detected.is_some() => break,
            Err(_) => panic!("replica2 not reported unreachable within {detect_bound:?}"),
        };
        snapshots += 1;
        worst_gap = worst_gap.max(s.taken_at - last_taken);
        last_taken = s.taken_at;
        for name in ["primary", "replica1"] {
            let o = server(&s, name);
            assert!(o.reachable && o.consecutive_failures == 0, "{o:?}");
            worst_age = worst_age.max(s.taken_at - o.observed_at);
        }
        if detected.is_none() && !server(&s, "replica2").reachable {
            detected = Some(Instant::now());
            let r2 = server(&s, "replica2");
            eprintln!(
                "paused replica2 reported unreachable after {:?}: {:?}",
                t.elapsed(),
                r2.error
            );
            assert!(
                r2.error.as_deref().unwrap().contains("no answer within"),
                "{r2:?}"
            );
            assert_eq!(r2.consecutive_failures, 1);
        }
    }
    eprintln!(
        "while replica2 was paused: {snapshots} snapshots, worst gap {worst_gap:?}, \
         worst age of the others' observations {worst_age:?}"
    );
    assert!(detected.is_some());
    assert!(worst_gap <= interval + MARGIN, "snapshot gap {worst_gap:?}");
    assert!(
        worst_age <= interval + MARGIN,
        "observation age {worst_age:?}"
    );
    assert!(snapshots >= 5, "{snapshots} snapshots");

    let t = Instant::now();
    blocking(|| sb.replica(2).resume()).unwrap();
    let bound = interval + m.config.connect_timeout + m.config.timeout + MARGIN;
    let back = m
        .wait_for(bound, "replica2 reachable again", |s| {
            server(s, "replica2").reachable
        })
        .await;
    eprintln!(
        "resumed replica2 reported reachable after {:?}",
        t.elapsed()
    );
    let r2 = server(&back, "replica2");
    assert_eq!(r2.consecutive_failures, 0);
    assert_eq!(r2.read_only, Some(true));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_lag_is_small_when_caught_up_and_grows_when_sql_stops() {
    let sb = blocking(|| Sandbox::for_test(2)).unwrap();
    let mut m = Monitor::start(&sb, true);
    let small = m.config.interval + MARGIN;
    let t = Instant::now();
    let s = m
        .wait_for(
            Duration::from_secs(4),
            "heartbeat lag on both replicas",
            |s| {
                ["replica1", "replica2"]
                    .iter()
                    .all(|r| server(s, r).heartbeat_lag.is_some())
            },
        )
        .await;
    eprintln!("first heartbeat lags after {:?}", t.elapsed());
    assert_eq!(server(&s, "primary").heartbeat_lag, None);
    // Caught up: the lag stays below about one interval over several rounds.
    let mut worst = Duration::ZERO;
    for _ in 0..6 {
        m.rx.changed().await.unwrap();
        let s = m.rx.borrow_and_update().clone();
        for r in ["replica1", "replica2"] {
            let o = server(&s, r);
            assert!(o.error.is_none(), "{o:?}");
            worst = worst.max(o.heartbeat_lag.unwrap());
        }
    }
    eprintln!("caught-up heartbeat lag: worst {worst:?}");
    assert!(worst < small, "{worst:?}");

    blocking(|| sb.lag(1, LagAction::StopSql)).unwrap();
    let t = Instant::now();
    let s = m
        .wait_for(
            Duration::from_secs(3),
            "replica1 heartbeat lag over 1 s",
            |s| {
                server(s, "replica1")
                    .heartbeat_lag
                    .is_some_and(|l| l > Duration::from_secs(1))
            },
        )
        .await;
    eprintln!(
        "SQL thread stopped: replica1 heartbeat lag {:?} after {:?}",
        server(&s, "replica1").heartbeat_lag,
        t.elapsed()
    );
    let r2 = server(&s, "replica2").heartbeat_lag.unwrap();
    assert!(r2 < small, "replica2 unaffected: {r2:?}");

    blocking(|| sb.lag(1, LagAction::Resume)).unwrap();
    m.wait_for(Duration::from_secs(2), "replica1 caught up again", |s| {
        server(s, "replica1")
            .heartbeat_lag
            .is_some_and(|l| l < small)
    })
    .await;
    m.stop().await;
}
