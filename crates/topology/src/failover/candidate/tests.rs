use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::config::MonitoredServer;
use crate::types::{ReplicaStatus, ThreadState};

fn status(io_pos: &str, delay: u64) -> ReplicaStatus {
    ReplicaStatus {
        io_running: ThreadState::Connecting,
        sql_running: ThreadState::Yes,
        master_host: "127.0.0.1".into(),
        master_port: 3310,
        gtid_io_pos: io_pos.into(),
        using_gtid: "Slave_Pos".into(),
        sql_delay: delay,
        last_io_errno: 2003,
        ..Default::default()
    }
}

/// A reachable replica that received `io` and applied `applied`.
fn r(name: &str, io: &str, applied: &str) -> ServerObservation {
    let mut o = ServerObservation::blank(
        &MonitoredServer::new(0, 0, name, format!("{name}:3306")),
        Instant::now(),
    );
    o.reachable = true;
    o.read_only = Some(true);
    o.gtid_slave_pos = Some(applied.into());
    o.gtid_current_pos = Some(applied.into());
    o.replication = Some(status(io, 0));
    o
}

fn dead_primary() -> ServerObservation {
    ServerObservation::blank(
        &MonitoredServer::new(0, 0, "primary", "primary:3306"),
        Instant::now(),
    )
}

fn name(c: Result<Candidate, NoCandidate>) -> String {
    c.map(|c| c.name).unwrap_or_else(|e| format!("error: {e}"))
}

#[test]
fn most_received_wins_over_priority() {
    let servers = [
        dead_primary(),
        r("replica1", "0-1-10", "0-1-8"),
        r("replica2", "0-1-9", "0-1-9"),
    ];
    let c = choose_candidate(&servers, &[("replica2", 100)], &[]).unwrap();
    assert_eq!(c.name, "replica1");
    assert_eq!(c.address, "replica1:3306");
    assert_eq!(c.received.to_string(), "0-1-10");
    assert_eq!(c.applied.to_string(), "0-1-8");
    assert_eq!(c.member(), Member::new("replica1", "replica1:3306"));
    assert!(c.others.contains(&Rejected {
        name: "primary".into(),
        why: Rejection::Unreachable
    }));
    assert!(c.others.contains(&Rejected {
        name: "replica2".into(),
        why: Rejection::Behind {
            of: "replica1".into()
        }
    }));
}

#[test]
fn then_most_applied_then_priority_then_name() {
    let a = r("a", "0-1-10", "0-1-8");
    let b = r("b", "0-1-10", "0-1-9");
    let c = r("c", "0-1-10", "0-1-9");
    let all = [a.clone(), b.clone(), c.clone()];
    assert_eq!(name(choose_candidate(&all, &[], &[])), "b");
    assert_eq!(name(choose_candidate(&all, &[("c", 1)], &[])), "c");
    assert_eq!(name(choose_candidate(&all, &[("a", 9)], &[])), "b");
    assert_eq!(name(choose_candidate(&all, &[("b", -1)], &[])), "c");
    let got = choose_candidate(&all, &[], &[]).unwrap();
    assert!(got.others.contains(&Rejected {
        name: "c".into(),
        why: Rejection::RankedLower
    }));
}

#[test]
fn received_includes_what_was_applied() {
    // Gtid_IO_Pos can lag gtid_slave_pos right after START SLAVE; applied counts as received.
    let servers = [r("a", "", "0-1-7"), r("b", "0-1-6", "0-1-6")];
    let c = choose_candidate(&servers, &[], &[]).unwrap();
    assert_eq!(
        (c.name.as_str(), c.received.to_string()),
        ("a", "0-1-7".into())
    );
}

#[test]
fn semi_sync_the_replica_with_every_acknowledged_transaction() {
    // AFTER_SYNC: 0-1-10 was acknowledged by replica1 only (replica2's IO thread was behind).
    // However much replica2 is preferred, replica1 is the candidate.
    let servers = [
        dead_primary(),
        r("replica1", "0-1-10", "0-1-9"),
        r("replica2", "0-1-9", "0-1-9"),
    ];
    let c = choose_candidate(&servers, &[("replica2", i32::MAX)], &[]).unwrap();
    assert_eq!(c.name, "replica1");
    // Excluding the only holder of the acknowledged transaction leaves no safe choice.
    let e = choose_candidate(&servers, &[], &["replica1"]).unwrap_err();
    let NoCandidate::WouldLose { best, ahead, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (best.as_str(), ahead.as_slice()),
        ("replica2", &["replica1".to_string()][..])
    );
    assert!(e.to_string().contains("replica1"), "{e}");
}

#[test]
fn ineligible_replicas() {
    let mut delayed = r("delayed", "0-1-10", "0-1-2");
    delayed.replication = Some(status("0-1-10", 3600));
    let mut mysql = r("mysql", "", "");
    mysql.gtid_slave_pos = None;
    let mut garbage = r("garbage", "zzz", "0-1-1");
    garbage.gtid_current_pos = None;
    let mut writable = r("writable", "", "");
    writable.replication = None;
    let servers = [dead_primary(), delayed, mysql, garbage, writable];
    let e = choose_candidate(&servers, &[], &[]).unwrap_err();
    let NoCandidate::NoEligibleReplica { rejected } = &e else {
        panic!("{e:?}")
    };
    let why: Vec<String> = rejected
        .iter()
        .map(|r| format!("{}: {}", r.name, r.why))
        .collect();
    assert_eq!(why[0], "primary: unreachable");
    assert_eq!(why[1], "delayed: delayed by 3600 s");
    assert!(why[2].starts_with("mysql: no GTID position"), "{why:?}");
    assert!(why[3].starts_with("garbage: no GTID position"), "{why:?}");
    assert_eq!(why[4], "writable: not a replica");
    assert!(e.to_string().starts_with("no eligible replica ("), "{e}");
    let none: [ServerObservation; 0] = [];
    assert!(matches!(
        choose_candidate(&none, &[], &[]),
        Err(NoCandidate::NoEligibleReplica { .. })
    ));
}

#[test]
fn a_delayed_replica_that_received_more_blocks_the_choice() {
    let mut delayed = r("delayed", "0-1-11", "0-1-2");
    delayed.replication = Some(status("0-1-11", 60));
    let servers = [r("a", "0-1-10", "0-1-10"), delayed];
    assert!(matches!(
        choose_candidate(&servers, &[], &[]),
        Err(NoCandidate::WouldLose { .. })
    ));
}

#[test]
fn diverged_domains_have_no_safe_candidate() {
    let servers = [
        r("a", "0-1-10,1-1-5", "0-1-10,1-1-5"),
        r("b", "0-1-9,1-1-6", "0-1-9,1-1-6"),
    ];
    let e = choose_candidate(&servers, &[], &[]).unwrap_err();
    let NoCandidate::WouldLose { best, ahead, .. } = e else {
        panic!()
    };
    // Each holds something the other lacks; the "best" is the tie broken by name.
    assert_eq!(best, "a");
    assert_eq!(ahead, ["b"]);
    // Two domains, one replica ahead in both: fine.
    let servers = [
        r("a", "0-1-10,1-1-6", "0-1-10,1-1-6"),
        r("b", "0-1-9,1-1-6", "0-1-9,1-1-6"),
    ];
    assert_eq!(name(choose_candidate(&servers, &[], &[])), "a");
}

fn arb_replicas() -> impl Strategy<Value = Vec<(u64, u64, bool, bool, i32)>> {
    // (received, applied <= received, reachable, excluded, priority), one domain.
    proptest::collection::vec(
        (
            0u64..20,
            0u64..20,
            any::<bool>(),
            prop::bool::weighted(0.2),
            -2i32..3,
        )
            .prop_map(|(a, b, reach, ex, p)| (a.max(b), a.min(b), reach, ex, p)),
        0..6,
    )
}

fn build(
    spec: &[(u64, u64, bool, bool, i32)],
) -> (Vec<ServerObservation>, Vec<(String, i32)>, Vec<String>) {
    let mut servers = Vec::new();
    let mut prio = Vec::new();
    let mut excluded = Vec::new();
    for (i, &(recv, applied, reachable, ex, p)) in spec.iter().enumerate() {
        let n = format!("r{i}");
        let pos = |s: u64| {
            if s == 0 {
                String::new()
            } else {
                format!("0-1-{s}")
            }
        };
        let mut o = r(&n, &pos(recv), &pos(applied));
        o.reachable = reachable;
        servers.push(o);
        prio.push((n.clone(), p));
        if ex {
            excluded.push(n);
        }
    }
    (servers, prio, excluded)
}

proptest! {
    /// The choice is eligible, holds everything any reachable replica received, and does not
    /// depend on the order of the observations; it fails only when no eligible replica can.
    #[test]
    fn choice_is_safe_and_order_independent(spec in arb_replicas(), rotate in 0usize..6) {
        let (servers, prio, excluded) = build(&spec);
        let prio: Vec<(&str, i32)> = prio.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        let excluded: Vec<&str> = excluded.iter().map(String::as_str).collect();
        let got = choose_candidate(&servers, &prio, &excluded);
        let max_reachable = spec.iter().filter(|s| s.2).map(|s| s.0).max();
        let best_eligible = spec
            .iter()
            .enumerate()
            .filter(|(i, s)| s.2 && !excluded.contains(&format!("r{i}").as_str()))
            .map(|(_, s)| s.0)
            .max();
        match &got {
            Ok(c) => {
                let i: usize = c.name[1..].parse().unwrap();
                prop_assert!(spec[i].2 && !excluded.contains(&c.name.as_str()));
                prop_assert_eq!(Some(spec[i].0), max_reachable);
                // Among those equally complete, none applied more.
                let applied = spec[i].1;
                for (j, s) in spec.iter().enumerate() {
                    let eligible = s.2 && !excluded.contains(&format!("r{j}").as_str());
                    if eligible && Some(s.0) == max_reachable {
                        prop_assert!(s.1 <= applied);
                    }
                }
            }
            Err(NoCandidate::NoEligibleReplica { .. }) => prop_assert!(best_eligible.is_none()),
            Err(NoCandidate::WouldLose { .. }) => prop_assert!(best_eligible < max_reachable),
        }
        let mut rotated = servers.clone();
        if !rotated.is_empty() {
            let k = rotate % rotated.len();
            rotated.rotate_left(k);
        }
        let again = choose_candidate(&rotated, &prio, &excluded);
        let key = |r: Result<Candidate, NoCandidate>| match r {
            Ok(c) => c.name,
            Err(NoCandidate::WouldLose { best, .. }) => format!("would lose: {best}"),
            Err(NoCandidate::NoEligibleReplica { .. }) => "none".into(),
        };
        prop_assert_eq!(key(got), key(again));
    }
}
