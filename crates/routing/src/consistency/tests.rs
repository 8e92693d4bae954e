use super::*;

fn pos(s: &str) -> MariaPos {
    s.parse().unwrap()
}

fn replica(gtids: &str, behind: Option<u64>) -> ReplicaState {
    ReplicaState {
        gtids: Some(pos(gtids)),
        exec: Some(BinlogPos {
            file: "bin.000001".into(),
            pos: 1000,
        }),
        seconds_behind: behind,
        heartbeat_lag_ms: None,
        caught_up: None,
    }
}

fn wrote(gtids: &str, at_ms: u64) -> WriteState {
    WriteState {
        at_ms: Some(at_ms),
        gtids: pos(gtids),
        binlog: None,
    }
}

fn fresh<'a>(
    mode: Consistency,
    write: &'a WriteState,
    global: &'a MariaPos,
    now_ms: u64,
) -> Freshness<'a> {
    Freshness {
        mode,
        write,
        global,
        now_ms,
        cluster_max_lag: None,
    }
}

#[test]
fn modes_parse_and_print() {
    for text in [
        "eventual",
        "primary",
        "primary_after_write(500)",
        "delay(200)",
        "max_lag(2)",
        "position",
        "gtid",
        "pos_wait(1000)",
        "gtid_wait(250)",
        "global",
    ] {
        let m: Consistency = text.parse().unwrap();
        assert_eq!(m.to_string(), text);
    }
    assert_eq!(
        " GTID_WAIT( 10 ) ".parse::<Consistency>().unwrap(),
        Consistency::GtidWait(Duration::from_millis(10))
    );
    for bad in [
        "",
        "gtid(",
        "delay",
        "delay(x)",
        "sometimes",
        "max_lag()",
        "primary(1)",
    ] {
        assert!(bad.parse::<Consistency>().is_err(), "{bad}");
    }
    assert!(!Consistency::Eventual.read_your_writes() && Consistency::Gtid.read_your_writes());
}

#[test]
fn gtid_mode_uses_what_is_known_or_checks_without_waiting() {
    let w = wrote("0-1-10", 1000);
    let none = MariaPos::default();
    let f = fresh(Consistency::Gtid, &w, &none, 1005);
    assert_eq!(
        f.eligible(Some(&replica("0-1-10", Some(0))), None),
        Eligibility::Yes(ReplicaCheck::None)
    );
    assert_eq!(
        f.eligible(Some(&replica("0-1-12", Some(0))), None),
        Eligibility::Yes(ReplicaCheck::None)
    );
    let behind = replica("0-1-9", Some(0));
    assert_eq!(
        f.eligible(Some(&behind), None),
        Eligibility::Yes(ReplicaCheck::GtidWait {
            gtids: "0-1-10".into(),
            timeout: Duration::ZERO
        })
    );
    // A check on the session's connection already saw it.
    assert_eq!(
        f.eligible(Some(&behind), Some(&pos("0-1-10"))),
        Eligibility::Yes(ReplicaCheck::None)
    );
    // A session that never wrote reads anywhere.
    let clean = WriteState::default();
    let f = fresh(Consistency::Gtid, &clean, &none, 0);
    assert_eq!(
        f.eligible(Some(&behind), None),
        Eligibility::Yes(ReplicaCheck::None)
    );
}

#[test]
fn time_based_modes() {
    let w = wrote("0-1-10", 1000);
    let none = MariaPos::default();
    let paw = Consistency::PrimaryAfterWrite(Duration::from_millis(500));
    assert!(fresh(paw, &w, &none, 1200).primary_only());
    assert!(!fresh(paw, &w, &none, 1600).primary_only());
    let delay = Consistency::Delay(Duration::from_millis(300));
    let r = replica("0-1-1", Some(0));
    assert_eq!(
        fresh(delay, &w, &none, 1100).eligible(Some(&r), None),
        Eligibility::Yes(ReplicaCheck::HoldUntil(1300))
    );
    assert_eq!(
        fresh(delay, &w, &none, 1400).eligible(Some(&r), None),
        Eligibility::Yes(ReplicaCheck::None)
    );
}

#[test]
fn max_lag_excludes_lagging_and_unknown_replicas() {
    let w = WriteState::default();
    let none = MariaPos::default();
    let f = fresh(Consistency::MaxLag(Duration::from_secs(2)), &w, &none, 0);
    assert_eq!(
        f.eligible(Some(&replica("", Some(1))), None),
        Eligibility::Yes(ReplicaCheck::None)
    );
    assert_eq!(
        f.eligible(Some(&replica("", Some(3))), None),
        Eligibility::No
    );
    // Seconds_Behind_Master NULL (SQL thread stopped): unknown, so excluded.
    assert_eq!(f.eligible(Some(&replica("", None)), None), Eligibility::No);
    // The cluster bound applies to every mode.
    let f = Freshness {
        cluster_max_lag: Some(Duration::from_secs(1)),
        ..fresh(Consistency::Eventual, &w, &none, 0)
    };
    assert_eq!(
        f.eligible(Some(&replica("", Some(5))), None),
        Eligibility::No
    );
}

#[test]
fn position_modes() {
    let mut w = wrote("0-1-10", 0);
    let none = MariaPos::default();
    let f = fresh(Consistency::Position, &w, &none, 0);
    // Position not known yet (the monitor has not seen the primary since the write): no
    // replica can be shown to have it.
    assert_eq!(
        f.eligible(Some(&replica("", Some(0))), None),
        Eligibility::No
    );
    w.binlog = Some(BinlogPos {
        file: "bin.000001".into(),
        pos: 900,
    });
    let f = fresh(Consistency::Position, &w, &none, 0);
    assert_eq!(
        f.eligible(Some(&replica("", Some(0))), None),
        Eligibility::Yes(ReplicaCheck::None)
    );
    w.binlog = Some(BinlogPos {
        file: "bin.000002".into(),
        pos: 4,
    });
    let f = fresh(Consistency::Position, &w, &none, 0);
    assert_eq!(
        f.eligible(Some(&replica("", Some(0))), None),
        Eligibility::No
    );
    let f = fresh(
        Consistency::PosWait(Duration::from_millis(100)),
        &w,
        &none,
        0,
    );
    assert!(matches!(
        f.eligible(Some(&replica("", Some(0))), None),
        Eligibility::Yes(ReplicaCheck::PosWait { .. })
    ));
}

#[test]
fn global_needs_everyones_writes() {
    let w = WriteState::default();
    let global = pos("0-1-20");
    let f = fresh(Consistency::Global, &w, &global, 0);
    assert_eq!(
        f.eligible(Some(&replica("0-1-20", Some(0))), None),
        Eligibility::Yes(ReplicaCheck::None)
    );
    assert_eq!(
        f.eligible(Some(&replica("0-1-19", Some(0))), None),
        Eligibility::Yes(ReplicaCheck::GtidWait {
            gtids: "0-1-20".into(),
            timeout: Duration::ZERO
        })
    );
}

#[test]
fn a_replica_seen_behind_is_not_asked() {
    let w = wrote("0-1-10", 1000);
    let none = MariaPos::default();
    let f = fresh(Consistency::Gtid, &w, &none, 1005);
    let mut r = replica("0-1-9", Some(0));
    r.caught_up = Some(false);
    assert_eq!(f.eligible(Some(&r), None), Eligibility::No);
    r.caught_up = Some(true);
    assert!(matches!(
        f.eligible(Some(&r), None),
        Eligibility::Yes(ReplicaCheck::GtidWait { .. })
    ));
}
