use super::*;
use crate::config::MonitoredServer;

fn rounds(n: usize) -> Rounds {
    let now = Instant::now();
    Rounds::new(
        (0..n)
            .map(|i| {
                ServerObservation::not_probed(
                    &MonitoredServer::new(0, i, format!("s{i}"), "x:1"),
                    now,
                )
            })
            .collect(),
    )
}

fn result(r: &Rounds, i: usize, reachable: bool) -> ServerObservation {
    let mut o = r.latest[i].clone();
    o.reachable = reachable;
    o.error = (!reachable).then(|| "down".to_string());
    o.observed_at = Instant::now();
    o
}

fn asked(v: &[(usize, ProbeRequest)]) -> Vec<usize> {
    v.iter().map(|(i, _)| *i).collect()
}

#[test]
fn a_round_is_published_when_every_server_answered() {
    let mut r = rounds(3);
    let (publish, a) = r.start_round();
    assert!(!publish);
    assert_eq!(asked(&a), [0, 1, 2]);
    assert!(!r.on_result(0, result(&r, 0, true)));
    assert!(!r.on_result(2, result(&r, 2, true)));
    assert!(r.on_result(1, result(&r, 1, true)), "round complete");
    assert_eq!(r.publish(Instant::now()).round, 1);
    assert!(!r.grace_expired(), "complete rounds have no grace period");
    // Next round: same again.
    let (publish, a) = r.start_round();
    assert!(!publish);
    assert_eq!(a.len(), 3);
}

#[test]
fn a_stalled_server_delays_a_round_once_then_is_not_waited_for() {
    let mut r = rounds(3);
    r.start_round();
    for i in 0..3 {
        r.on_result(i, result(&r, i, true));
    }
    // Round 2: server 1 stalls.
    r.start_round();
    assert!(!r.on_result(0, result(&r, 0, true)));
    assert!(!r.on_result(2, result(&r, 2, true)));
    // Half an interval later server 1 still probes: the others' answers are published.
    assert!(r.grace_expired());
    r.publish(Instant::now());
    assert!(!r.grace_expired(), "nothing new since");
    // Round 3 starts while server 1's probe still runs: nothing new to publish, server 1 is
    // not asked again, and round 3 completes without it.
    let (publish, a) = r.start_round();
    assert!(!publish);
    assert_eq!(asked(&a), [0, 2]);
    assert!(!r.on_result(0, result(&r, 0, true)));
    assert!(r.on_result(2, result(&r, 2, true)));
    // Server 1's probe times out: a reachability change, published at once.
    assert!(r.on_result(1, result(&r, 1, false)));
    // Round 4: server 1 is asked again but, known down, not waited for.
    let (publish, a) = r.start_round();
    assert!(!publish);
    assert_eq!(asked(&a), [0, 1, 2]);
    assert!(!r.on_result(0, result(&r, 0, true)));
    assert!(
        r.on_result(2, result(&r, 2, true)),
        "complete without server 1"
    );
    assert!(
        !r.on_result(1, result(&r, 1, false)),
        "still down: nothing new"
    );
    // It comes back: published at once.
    r.start_round();
    assert!(r.on_result(1, result(&r, 1, true)));
}

#[test]
fn an_incomplete_round_is_published_at_the_next_start_if_its_grace_did_not() {
    let mut r = rounds(2);
    r.start_round();
    r.on_result(0, result(&r, 0, true));
    let (publish, a) = r.start_round();
    assert!(publish, "leftovers of round 1");
    assert_eq!(asked(&a), [0], "server 1 still busy");
}

#[test]
fn a_round_with_only_down_servers_is_published_at_its_start() {
    let mut r = rounds(1);
    r.start_round();
    assert!(
        r.on_result(0, result(&r, 0, false)),
        "first answer completes round 1"
    );
    let (publish, a) = r.start_round();
    assert!(publish);
    assert_eq!(asked(&a), [0]);
}

#[test]
fn heartbeat_writer_is_asked_only_once_a_primary_was_seen() {
    let mut r = rounds(2);
    let (_, a) = r.start_round();
    assert!(
        a.iter().all(|(_, q)| !q.may_write_heartbeat),
        "nothing known yet"
    );
    let mut p = result(&r, 0, true);
    p.read_only = Some(false);
    r.on_result(0, p);
    let mut replica = result(&r, 1, true);
    replica.read_only = Some(true);
    r.on_result(1, replica);
    let (_, a) = r.start_round();
    assert_eq!(
        a.iter()
            .map(|(_, q)| q.may_write_heartbeat)
            .collect::<Vec<_>>(),
        [true, false]
    );
}

#[test]
fn lost_task_is_not_waited_for() {
    let mut r = rounds(2);
    r.start_round();
    r.on_result(0, result(&r, 0, true));
    r.on_lost(1);
    assert!(!r.open);
    assert!(!r.latest[1].reachable);
    let (_, a) = r.start_round();
    assert_eq!(asked(&a), [0], "busy forever");
}
