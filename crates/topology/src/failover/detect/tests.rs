use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::config::MonitoredServer;
use crate::types::ReplicaStatus;

const MS: Duration = Duration::from_millis(1);

fn server(i: usize, name: &str, at: Instant) -> ServerObservation {
    let addr = format!("127.0.0.1:{}", 3310 + i);
    ServerObservation::blank(&MonitoredServer::new(0, i, name, addr), at)
}

fn primary(at: Instant, failures: u32) -> ServerObservation {
    let mut o = server(0, "primary", at);
    o.reachable = failures == 0;
    o.consecutive_failures = failures;
    if failures == 0 {
        o.read_only = Some(false);
    } else {
        o.error = Some("connect: refused".into());
    }
    o
}

fn status(master_port: u16, io: ThreadState, errno: u32) -> ReplicaStatus {
    ReplicaStatus {
        io_running: io,
        sql_running: ThreadState::Yes,
        master_host: "127.0.0.1".into(),
        master_port,
        gtid_io_pos: "0-1-5".into(),
        using_gtid: "Slave_Pos".into(),
        last_io_errno: errno,
        ..Default::default()
    }
}

fn replica(i: usize, at: Instant, io: ThreadState, errno: u32) -> ServerObservation {
    let mut o = server(i, &format!("replica{i}"), at);
    o.reachable = true;
    o.read_only = Some(true);
    o.replication = Some(status(3310, io, errno));
    o
}

fn snap(round: u64, servers: Vec<ServerObservation>) -> Arc<Snapshot> {
    let taken_at = servers.iter().map(|o| o.observed_at).max().unwrap();
    Arc::new(Snapshot {
        servers,
        taken_at,
        round,
    })
}

fn policy(failcount: u32, min_ms: u64) -> DetectionPolicy {
    DetectionPolicy {
        failcount,
        min_unreachable: MS * min_ms as u32,
    }
}

/// t0: all fine; t0+100ms: primary refused, replicas `io` with `errno`, observed at +110ms.
fn killed(io: ThreadState, errno: u32) -> (Vec<Arc<Snapshot>>, Instant) {
    let t0 = Instant::now();
    let healthy = snap(
        1,
        vec![
            primary(t0, 0),
            replica(1, t0, ThreadState::Yes, 0),
            replica(2, t0, ThreadState::Yes, 0),
        ],
    );
    let t1 = t0 + MS * 100;
    let down = snap(
        2,
        vec![
            primary(t1, 1),
            replica(1, t1 + MS * 10, io.clone(), errno),
            replica(2, t1 + MS * 10, io, errno),
        ],
    );
    (vec![healthy, down], t1 + MS * 20)
}

#[test]
fn alive_unknown_and_not_probed() {
    let t = Instant::now();
    let p = &DetectionPolicy::default();
    let none: [Arc<Snapshot>; 0] = [];
    assert_eq!(primary_failed(&none, "primary", p, t), Verdict::Unknown);
    let h = [snap(
        1,
        vec![primary(t, 0), replica(1, t, ThreadState::Yes, 0)],
    )];
    assert_eq!(primary_failed(&h, "primary", p, t), Verdict::Alive);
    assert_eq!(primary_failed(&h, "nope", p, t), Verdict::Unknown);
    let mut not_probed = primary(t, 0);
    not_probed.reachable = false;
    let h = [snap(0, vec![not_probed])];
    assert_eq!(primary_failed(&h, "primary", p, t), Verdict::Unknown);
}

#[test]
fn killed_primary_confirmed_by_connecting_replicas() {
    let (h, now) = killed(ThreadState::Connecting, 2013);
    let v = primary_failed(&h, "primary", &DetectionPolicy::default(), now);
    let Verdict::Failed(f) = v else {
        panic!("{v:?}")
    };
    assert_eq!(f.primary, "primary");
    assert_eq!(f.failures, 1);
    assert_eq!(f.unreachable_for, MS * 20);
    assert_eq!(f.confirmed_by, ["replica1", "replica2"]);
    assert!(f.error.is_some());
    // Plain Snapshots work as history too.
    let plain: Vec<Snapshot> = h.iter().map(|s| (**s).clone()).collect();
    assert!(primary_failed(&plain, "primary", &DetectionPolicy::default(), now).is_failed());
}

#[test]
fn an_io_error_counts_even_while_the_thread_says_yes() {
    let (h, now) = killed(ThreadState::Yes, 2013);
    assert!(primary_failed(&h, "primary", &DetectionPolicy::default(), now).is_failed());
    let (h, now) = killed(ThreadState::No, 0);
    assert!(primary_failed(&h, "primary", &DetectionPolicy::default(), now).is_failed());
}

#[test]
fn busy_primary_whose_replicas_still_receive_is_not_failed() {
    let (h, now) = killed(ThreadState::Yes, 0);
    let v = primary_failed(&h, "primary", &policy(1, 0), now + Duration::from_secs(60));
    let Verdict::Suspect(s) = v else {
        panic!("{v:?}")
    };
    assert_eq!(
        s.waiting_for,
        [
            Pending::StillReceiving {
                replica: "replica1".into()
            },
            Pending::StillReceiving {
                replica: "replica2".into()
            }
        ]
    );
}

#[test]
fn one_replica_still_receiving_is_enough_to_wait() {
    let (mut h, now) = killed(ThreadState::Connecting, 2003);
    let mut last = (*h[1]).clone();
    last.servers[2] = replica(2, now, ThreadState::Yes, 0);
    h[1] = Arc::new(last);
    let v = primary_failed(&h, "primary", &DetectionPolicy::default(), now);
    assert!(
        matches!(&v, Verdict::Suspect(s) if s.waiting_for == [Pending::StillReceiving { replica: "replica2".into() }]),
        "{v:?}"
    );
}

#[test]
fn replica_observations_from_before_the_failure_do_not_count() {
    let (mut h, now) = killed(ThreadState::Connecting, 2013);
    let mut last = (*h[1]).clone();
    // replica2's last probe ended before the primary's last successful one.
    last.servers[2].observed_at = h[0].servers[0].observed_at - MS;
    h[1] = Arc::new(last);
    let v = primary_failed(&h, "primary", &DetectionPolicy::default(), now);
    assert!(
        matches!(&v, Verdict::Suspect(s) if s.waiting_for == [Pending::NotObservedSince { replica: "replica2".into() }]),
        "{v:?}"
    );
}

#[test]
fn failcount_and_min_unreachable() {
    let (h, now) = killed(ThreadState::Connecting, 2013);
    let v = primary_failed(&h, "primary", &policy(3, 500), now);
    let Verdict::Suspect(s) = v else {
        panic!("{v:?}")
    };
    assert_eq!(
        s.waiting_for,
        [
            Pending::Failures { have: 1, need: 3 },
            Pending::Time { left: MS * 480 }
        ]
    );
    // failcount 0 counts as 1.
    assert!(primary_failed(&h, "primary", &policy(0, 0), now).is_failed());
}

#[test]
fn unreachable_time_runs_from_the_first_failed_probe_in_the_history() {
    let t0 = Instant::now();
    let replicas = |at| {
        vec![
            replica(1, at, ThreadState::Connecting, 2003),
            replica(2, at, ThreadState::Connecting, 2003),
        ]
    };
    let mut h = Vec::new();
    for (i, failures) in [0u32, 1, 2, 3].into_iter().enumerate() {
        let at = t0 + MS * (100 * i as u32);
        let mut servers = vec![primary(at, failures)];
        servers.extend(replicas(at + MS));
        h.push(snap(i as u64, servers));
    }
    // First failure at +100 ms; now = +350 ms.
    let now = t0 + MS * 350;
    let v = primary_failed(&h, "primary", &policy(3, 250), now);
    assert!(
        matches!(&v, Verdict::Failed(f) if f.unreachable_for == MS * 250 && f.failures == 3),
        "{v:?}"
    );
    let v = primary_failed(&h, "primary", &policy(3, 251), now);
    assert!(matches!(v, Verdict::Suspect(_)), "{v:?}");
}

#[test]
fn without_reachable_replicas_the_probes_decide() {
    let t = Instant::now();
    let mut r = replica(1, t, ThreadState::Yes, 0);
    r.reachable = false;
    r.replication = None;
    let h = [snap(2, vec![primary(t, 2), r])];
    let v = primary_failed(&h, "primary", &DetectionPolicy::default(), t);
    assert!(
        matches!(&v, Verdict::Failed(f) if f.confirmed_by.is_empty()),
        "{v:?}"
    );
}

#[test]
fn only_direct_replicas_count_when_some_match_the_address() {
    let (mut h, now) = killed(ThreadState::Connecting, 2013);
    let mut last = (*h[1]).clone();
    // replica3 replicates from replica1 and still receives from it.
    let mut chained = replica(3, now, ThreadState::Yes, 0);
    chained.replication = Some(status(3311, ThreadState::Yes, 0));
    last.servers.push(chained);
    h[1] = Arc::new(last.clone());
    let v = primary_failed(&h, "primary", &DetectionPolicy::default(), now);
    assert!(
        matches!(&v, Verdict::Failed(f) if f.confirmed_by == ["replica1", "replica2"]),
        "{v:?}"
    );
    // When no replica names the primary's address, all of them count.
    for o in &mut last.servers[1..] {
        if let Some(st) = &mut o.replication {
            st.master_host = "db-primary".into();
        }
    }
    h[1] = Arc::new(last);
    let v = primary_failed(&h, "primary", &DetectionPolicy::default(), now);
    assert!(matches!(v, Verdict::Suspect(_)), "{v:?}");
}

#[test]
fn promoted_and_last_primary() {
    let t = Instant::now();
    let mut promoted = replica(1, t, ThreadState::Yes, 0);
    promoted.read_only = Some(false);
    promoted.replication = None;
    let servers = vec![primary(t, 0), promoted, replica(2, t, ThreadState::Yes, 0)];
    assert_eq!(
        promoted_primary(&servers, &["primary"]).map(|o| o.name.as_str()),
        Some("replica1")
    );
    assert_eq!(
        promoted_primary(&servers, &[]).map(|o| o.name.as_str()),
        Some("primary")
    );
    assert!(promoted_primary(&servers, &["primary", "replica1"]).is_none());

    let one = snap(1, vec![primary(t, 0), replica(1, t, ThreadState::Yes, 0)]);
    let two = snap(2, servers);
    let down = snap(3, vec![primary(t, 1), replica(1, t, ThreadState::Yes, 0)]);
    assert_eq!(last_primary(std::slice::from_ref(&one)), Some("primary"));
    assert_eq!(last_primary(&[one.clone(), two.clone()]), Some("primary"));
    assert_eq!(
        last_primary(&[one, two.clone(), down.clone()]),
        Some("primary")
    );
    assert_eq!(last_primary(&[two, down]), None);
}

fn arb_io() -> impl Strategy<Value = (ThreadState, u32)> {
    prop_oneof![
        Just((ThreadState::Yes, 0)),
        Just((ThreadState::Yes, 2013)),
        Just((ThreadState::Connecting, 2003)),
        Just((ThreadState::Connecting, 0)),
        Just((ThreadState::No, 0)),
    ]
}

proptest! {
    /// Failed implies: enough failures, long enough, and every reachable replica observed after
    /// the primary was last alive has stopped receiving. And once failed, later stays failed.
    #[test]
    fn failed_only_when_every_condition_holds(
        failures in 1u32..6,
        failcount in 0u32..6,
        min_ms in 0u64..400,
        since_ms in 0u64..400,
        replicas in proptest::collection::vec((arb_io(), any::<bool>(), -50i64..50), 0..4),
    ) {
        let t0 = Instant::now();
        let alive_at = t0;
        let failed_at = t0 + MS * 100;
        let now = failed_at + MS * since_ms as u32;
        let mut servers = vec![primary(failed_at, failures)];
        for (i, ((io, errno), reachable, offset)) in replicas.iter().enumerate() {
            let at = if *offset >= 0 { alive_at + MS * *offset as u32 } else { alive_at - MS * (-*offset) as u32 };
            let mut r = replica(i + 1, at, io.clone(), *errno);
            r.reachable = *reachable;
            servers.push(r);
        }
        let h = [snap(1, vec![primary(alive_at, 0)]), snap(2, servers.clone())];
        let pol = policy(failcount, min_ms);
        let v = primary_failed(&h, "primary", &pol, now);
        let receiving_or_stale = servers[1..].iter().any(|r| {
            r.reachable && (r.observed_at < alive_at || receives(r))
        });
        let expect = failures >= failcount.max(1) && since_ms >= min_ms && !receiving_or_stale;
        prop_assert_eq!(v.is_failed(), expect, "{:?}", v);
        if v.is_failed() {
            prop_assert!(primary_failed(&h, "primary", &pol, now + MS * 1000).is_failed());
        }
    }
}

/// A replica that received `beats` heartbeats and is still `Yes`, with a 250 ms period.
fn beating(i: usize, at: Instant, beats: u64) -> ServerObservation {
    let mut o = replica(i, at, ThreadState::Yes, 0);
    let st = o.replication.as_mut().unwrap();
    st.received_heartbeats = Some(beats);
    st.heartbeat_period = Some(MS * 250);
    o
}

/// SIGSTOP at t0+100 ms: the primary's probes time out, the replicas' IO threads still say
/// `Yes` and their heartbeat counts stand still from `last_beat_at` on, observed every 100 ms
/// up to `until`.
fn paused(last_beat_at: u64, until: u64) -> (Vec<Arc<Snapshot>>, Instant) {
    let t0 = Instant::now();
    let mut h = Vec::new();
    let mut t = 0;
    while t <= until {
        let at = t0 + MS * t as u32;
        let beats = if t < last_beat_at {
            t / 100
        } else {
            last_beat_at / 100
        };
        let p = if t < 100 {
            primary(at, 0)
        } else {
            primary(at, ((t - 100) / 100 + 1) as u32)
        };
        h.push(snap(
            t,
            vec![p, beating(1, at + MS, beats), beating(2, at + MS, beats)],
        ));
        t += 100;
    }
    (h, t0 + MS * (until as u32 + 2))
}

#[test]
fn paused_primary_confirmed_by_silent_heartbeats() {
    let p = DetectionPolicy::default();
    // Silent since 100 ms; at 1000 ms: 900 ms < 2 * 250 + 500.
    let (h, now) = paused(100, 1000);
    let v = primary_failed(&h, "primary", &p, now);
    assert!(
        matches!(&v, Verdict::Suspect(s) if s.waiting_for.iter().all(|w| matches!(w, Pending::StillReceiving { .. }))),
        "{v:?}"
    );
    // At 1200 ms: 1100 ms of silence.
    let (h, now) = paused(100, 1200);
    let v = primary_failed(&h, "primary", &p, now);
    let Verdict::Failed(f) = v else {
        panic!("{v:?}")
    };
    assert_eq!(f.confirmed_by, ["replica1", "replica2"]);
}

#[test]
fn heartbeats_still_arriving_keep_an_unreachable_primary() {
    // The primary's probes fail from 100 ms on, but its heartbeats keep coming (proxy-side
    // network problem, or a primary too busy to answer probes): never failed.
    let (h, now) = paused(10_000, 3_000);
    let v = primary_failed(&h, "primary", &DetectionPolicy::default(), now);
    assert!(matches!(v, Verdict::Suspect(_)), "{v:?}");
    // Without heartbeat counts (MySQL), a still-`Yes` IO thread is never "silent".
    let (mut h, now) = paused(100, 3_000);
    for s in &mut h {
        let s = Arc::make_mut(s);
        for o in &mut s.servers {
            if let Some(st) = o.replication.as_mut() {
                st.received_heartbeats = None;
            }
        }
    }
    assert!(matches!(
        primary_failed(&h, "primary", &DetectionPolicy::default(), now),
        Verdict::Suspect(_)
    ));
}
