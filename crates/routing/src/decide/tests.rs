use lagless_config::from_toml_str;
use lagless_sql::{classify, LexOptions};
use proptest::prelude::*;

use super::*;
use crate::session::SessionRouting;

const BASE: &str = r#"
[[users]]
name = "app"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
[[users]]
name = "reporting"
native_password = "*630B64309B172CA77DD40A18D3113FAF9BB85068"
route = "primary"
[[clusters]]
name = "main"
user = "app"
[[clusters.servers]]
name = "primary"
address = "127.0.0.1:3310"
role = "primary"
[[clusters.servers]]
name = "replica1"
address = "127.0.0.1:3311"
role = "replica"
[[clusters.servers]]
name = "replica2"
address = "127.0.0.1:3312"
role = "replica"
[[clusters]]
name = "other"
user = "app"
[[clusters.servers]]
name = "other-primary"
address = "127.0.0.1:3320"
role = "primary"
[[clusters.servers]]
name = "other-replica"
address = "127.0.0.1:3321"
role = "replica"
"#;

const RULES: &str = r#"
[[rules]]
name = "audit on primary"
table = "audit_*"
class = "read"
target = "primary"
[[rules]]
name = "legacy elsewhere"
table_regex = "^legacy_"
target = "cluster:other"
[[rules]]
name = "reports pinned"
schema = "reports"
target = "backend:replica2"
"#;

struct World {
    config: Config,
    view: ClusterView,
    session: SessionRouting,
}

fn world(rules: bool) -> World {
    world_with(rules, false)
}

fn world_with(rules: bool, optimistic: bool) -> World {
    let mut text = if rules {
        format!("{BASE}{RULES}")
    } else {
        BASE.to_string()
    };
    if optimistic {
        text.push_str("[routing]\noptimistic_transactions = true\n");
    }
    let config = from_toml_str(&text).unwrap();
    let view = ClusterView::from_config(&config);
    let session = SessionRouting::new(0, view.clusters.len(), "app", Some("app".into()), false);
    World {
        config,
        view,
        session,
    }
}

impl World {
    fn plan(&self, sql: &str) -> RoutePlan {
        let c = classify(sql, &LexOptions::default());
        route(&RouteInput {
            stmt: &c,
            session: &self.session,
            view: &self.view,
            config: &self.config,
            draw: Draw {
                entropy: 7,
                turn: 3,
            },
            global: &crate::gtid::MariaPos::default(),
            now_ms: 0,
        })
    }

    fn label(&self, sql: &str) -> String {
        self.plan(sql)
            .target_label(&self.view, self.session.cluster)
    }

    /// Runs a statement "successfully" with the given status flags and records the outcome.
    fn run(&mut self, sql: &str, status: u16) -> RoutePlan {
        let c = classify(sql, &LexOptions::default());
        let plan = self.plan(sql);
        if plan.new_sticky {
            self.session.sticky[plan.server.cluster] = Some(plan.server);
        }
        let on_primary = self.view.server(plan.server).role == Role::Primary;
        self.session
            .after_plan(&c, &plan, || on_primary, Some(status), true);
        plan
    }
}

const AUTOCOMMIT: u16 = 0x0002;
const IN_TRANS: u16 = 0x0001;
const IN_TRANS_RO: u16 = 0x2000;

#[test]
fn reads_go_to_a_replica_writes_to_the_primary() {
    let w = world(false);
    for (sql, want) in [
        ("SELECT c FROM sbtest1 WHERE id = 5", "replica"),
        ("SHOW TABLES", "replica"),
        ("INSERT INTO t VALUES (1)", "primary"),
        ("SELECT * FROM t FOR UPDATE", "primary"),
        ("SELECT LAST_INSERT_ID()", "primary"),
        ("SELECT @a", "primary"),
        ("SET NAMES utf8mb4", "primary"),
        ("CALL p()", "primary"),
        (
            "WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT 1",
            "primary",
        ),
        ("gibberish here", "primary"),
    ] {
        assert_eq!(w.label(sql), want, "{sql}");
    }
    assert_eq!(w.plan("SELECT 1").reason, Reason::Read);
    assert_eq!(
        w.plan("gibberish").reason,
        Reason::Class("not understood (fail-safe)")
    );
}

#[test]
fn read_write_transaction_keeps_everything_on_the_primary() {
    let mut w = world(false);
    assert_eq!(
        w.run("BEGIN", IN_TRANS | AUTOCOMMIT).kind,
        TargetKind::Primary
    );
    let p = w.run("SELECT 1", IN_TRANS | AUTOCOMMIT);
    assert_eq!(
        (p.kind, p.reason),
        (TargetKind::Primary, Reason::Transaction)
    );
    // A hint inside a transaction is ignored and reported.
    let p = w.plan("/* lagless:replica */ SELECT 1");
    assert!(p.hint_ignored && p.kind == TargetKind::Primary);
    w.run("COMMIT", AUTOCOMMIT);
    assert_eq!(w.label("SELECT 1"), "replica");
}

#[test]
fn read_only_transaction_runs_on_one_replica() {
    let mut w = world(false);
    let begin = w.run(
        "START TRANSACTION READ ONLY",
        IN_TRANS | IN_TRANS_RO | AUTOCOMMIT,
    );
    assert_eq!(begin.kind, TargetKind::Replica);
    for _ in 0..3 {
        let p = w.run("SELECT 1", IN_TRANS | IN_TRANS_RO | AUTOCOMMIT);
        assert_eq!(
            (p.server, p.reason),
            (begin.server, Reason::ReadOnlyTransaction)
        );
    }
    w.run("COMMIT", AUTOCOMMIT);
    assert!(!w.session.trx.active);
}

#[test]
fn optimistic_transaction_reads_on_a_replica_until_its_first_write() {
    let mut w = world_with(false, true);
    let begin = w.run("BEGIN", IN_TRANS | AUTOCOMMIT);
    assert_eq!(
        (begin.kind, &begin.reason),
        (TargetKind::Replica, &Reason::OptimisticTransaction)
    );
    assert!(w.session.trx.optimistic);
    for sql in ["SELECT c FROM t WHERE id = 1", "SHOW WARNINGS", "SELECT 2"] {
        let p = w.run(sql, IN_TRANS | AUTOCOMMIT);
        assert_eq!(
            (p.server, p.reason, p.move_from),
            (begin.server, Reason::OptimisticTransaction, None),
            "{sql}"
        );
    }
    // The first write moves the transaction: roll back on the replica, replay on the primary.
    let write = w.plan("UPDATE t SET c = 1 WHERE id = 1");
    assert_eq!(write.kind, TargetKind::Primary);
    assert_eq!(write.reason, Reason::OptimisticMoved("write"));
    assert_eq!(write.move_from, Some(begin.server));
    w.run("UPDATE t SET c = 1 WHERE id = 1", IN_TRANS | AUTOCOMMIT);
    assert!(!w.session.trx.optimistic);
    assert_eq!(w.session.trx.server, Some(write.server));
    let p = w.plan("SELECT 3");
    assert_eq!((p.server, p.reason), (write.server, Reason::Transaction));
    w.run("COMMIT", AUTOCOMMIT);
    assert!(!w.session.trx.active);
}

#[test]
fn optimistic_transaction_ends_on_its_replica_or_moves_for_what_a_replica_cannot_run() {
    for (sql, moves) in [
        ("COMMIT", false),
        ("ROLLBACK", false),
        ("SELECT * FROM t FOR UPDATE", true),
        ("SELECT @a", true),
        ("SET @a = 1", true),
        ("SAVEPOINT s1", true),
        ("CALL p()", true),
        ("gibberish", true),
        ("SELECT NOW(), c FROM t", true),
        ("SELECT @@server_id", true),
        ("select uuid()", true),
        ("SELECT c FROM t WHERE id = 1", false),
        ("SHOW WARNINGS", false),
    ] {
        let mut w = world_with(false, true);
        let begin = w.run("BEGIN", IN_TRANS | AUTOCOMMIT);
        let p = w.plan(sql);
        assert_eq!(p.move_from.is_some(), moves, "{sql}");
        let want = if moves {
            TargetKind::Primary
        } else {
            TargetKind::Replica
        };
        assert_eq!(p.kind, want, "{sql}");
        if !moves {
            assert_eq!(p.server, begin.server);
        }
    }
}

#[test]
fn optimistic_transactions_only_when_asked_for() {
    // Off by default.
    let mut w = world(false);
    assert_eq!(
        w.run("BEGIN", IN_TRANS | AUTOCOMMIT).kind,
        TargetKind::Primary
    );
    assert!(!w.session.trx.optimistic);
    // A session pinned to the primary, or a user routed there, starts it on the primary.
    let mut w = world_with(false, true);
    w.run("CREATE TEMPORARY TABLE tmp_x (a INT)", AUTOCOMMIT);
    assert_eq!(
        w.run("BEGIN", IN_TRANS | AUTOCOMMIT).kind,
        TargetKind::Primary
    );
    assert!(!w.session.trx.optimistic);
    // READ ONLY stays what it was: one replica, not optimistic (it cannot write at all).
    let mut w = world_with(false, true);
    let p = w.run(
        "START TRANSACTION READ ONLY",
        IN_TRANS | IN_TRANS_RO | AUTOCOMMIT,
    );
    assert_eq!(p.reason, Reason::ReadOnlyTransaction);
    assert!(!w.session.trx.optimistic);
}

#[test]
fn with_autocommit_off_a_read_opens_an_optimistic_transaction() {
    let mut w = world_with(false, true);
    w.run("SET autocommit = 0", 0);
    // Writes and SHOW WARNINGS still open it on the primary.
    assert_eq!(w.plan("UPDATE t SET c = 1").reason, Reason::AutocommitOff);
    assert_eq!(w.plan("SHOW WARNINGS").reason, Reason::AutocommitOff);
    assert_eq!(
        w.plan("SELECT c, NOW() FROM t").reason,
        Reason::AutocommitOff
    );
    let read = w.run("SELECT c FROM t WHERE id = 1", IN_TRANS);
    assert_eq!(
        (read.kind, &read.reason),
        (TargetKind::Replica, &Reason::OptimisticTransaction)
    );
    assert!(w.session.trx.optimistic && !w.session.trx.autocommit);
    let p = w.run("SELECT 2", IN_TRANS);
    assert_eq!(
        (p.server, p.reason),
        (read.server, Reason::OptimisticTransaction)
    );
    let write = w.plan("DELETE FROM t");
    assert_eq!(write.move_from, Some(read.server));
    // COMMIT on the replica ends it; the next read opens another one.
    w.run("COMMIT", 0);
    assert!(!w.session.trx.active && !w.session.trx.optimistic);
    assert_eq!(w.plan("SELECT 3").reason, Reason::OptimisticTransaction);
    // After a failed move, the next transaction opens on the primary, the one after that
    // on a replica again.
    w.session.trx.no_optimistic_next = true;
    assert_eq!(w.plan("SELECT 4").reason, Reason::AutocommitOff);
    w.run("SELECT 4", IN_TRANS);
    w.run("COMMIT", 0);
    assert_eq!(w.plan("SELECT 5").reason, Reason::OptimisticTransaction);
}

#[test]
fn autocommit_off_sends_statements_to_the_primary() {
    let mut w = world(false);
    w.run("SET autocommit = 0", 0);
    assert_eq!(w.plan("SELECT 1").reason, Reason::AutocommitOff);
    w.run("SELECT 1", IN_TRANS);
    assert_eq!(w.plan("SELECT 2").reason, Reason::Transaction);
    w.run("COMMIT", 0);
    w.run("SET autocommit = 1", AUTOCOMMIT);
    assert_eq!(w.label("SELECT 1"), "replica");
}

#[test]
fn session_pins_and_their_release() {
    let mut w = world(false);
    w.run("CREATE TEMPORARY TABLE tmp_x (a INT)", AUTOCOMMIT);
    let p = w.plan("SELECT * FROM orders");
    assert!(
        matches!(p.reason, Reason::Pinned(ref why) if why.contains("tmp_x")),
        "{p:?}"
    );
    w.run("DROP TEMPORARY TABLE tmp_x", AUTOCOMMIT);
    assert_eq!(w.label("SELECT * FROM orders"), "replica");
    w.run("LOCK TABLES t WRITE", AUTOCOMMIT);
    assert!(matches!(w.plan("SELECT 1").reason, Reason::Pinned(_)));
    w.run("UNLOCK TABLES", AUTOCOMMIT);
    w.run("SELECT GET_LOCK('job', 1)", AUTOCOMMIT);
    assert!(
        matches!(w.plan("SELECT 1").reason, Reason::Pinned(ref why) if why.contains("GET_LOCK"))
    );
    w.run("SELECT RELEASE_ALL_LOCKS()", AUTOCOMMIT);
    w.run("XA START 'x'", AUTOCOMMIT);
    assert!(matches!(w.plan("SELECT 1").reason, Reason::Pinned(_)));
    w.run("XA END 'x'", AUTOCOMMIT);
    w.run("XA COMMIT 'x' ONE PHASE", AUTOCOMMIT);
    assert_eq!(w.label("SELECT 1"), "replica");
    w.session.reset();
    assert!(!w.session.pins.any());
}

#[test]
fn replica_choice_is_sticky_and_skips_down_servers() {
    let mut w = world(false);
    let first = w.run("SELECT 1", AUTOCOMMIT);
    assert!(first.new_sticky);
    let again = w.run("SELECT 2", AUTOCOMMIT);
    assert_eq!(again.server, first.server);
    assert!(!again.new_sticky);
    w.view.clusters[0].servers[first.server.server].healthy = false;
    let moved = w.plan("SELECT 3");
    assert_ne!(moved.server, first.server);
    assert!(moved.new_sticky && moved.kind == TargetKind::Replica);
    for s in &mut w.view.clusters[0].servers {
        if s.role == Role::Replica {
            s.healthy = false;
        }
    }
    let p = w.plan("SELECT 4");
    assert_eq!(
        (p.kind, p.reason),
        (TargetKind::Primary, Reason::NoReplicaAvailable)
    );
}

#[test]
fn hints() {
    let w = world(false);
    assert_eq!(w.label("/* lagless:primary */ SELECT 1"), "primary");
    assert_eq!(w.label("/*+ lagless:replica */ SELECT 1"), "replica");
    assert_eq!(
        w.label("/* lagless:backend=replica2 */ SELECT 1"),
        "backend:replica2"
    );
    // A write hinted to a replica stays on the primary and the ignored hint is reported.
    let p = w.plan("/* lagless:replica */ UPDATE t SET a = 1");
    assert_eq!(p.kind, TargetKind::Primary);
    assert!(p.hint_ignored);
    let p = w.plan("/* lagless:backend=replica1 */ DELETE FROM t");
    assert!(p.hint_ignored && p.kind == TargetKind::Primary);
}

#[test]
fn rules_in_order() {
    let mut w = world(true);
    assert_eq!(w.label("SELECT * FROM audit_log"), "primary");
    assert_eq!(
        w.plan("SELECT * FROM audit_log").reason,
        Reason::Rule("audit on primary".into())
    );
    assert_eq!(w.label("SELECT * FROM legacy_orders"), "cluster:other");
    let p = w.plan("UPDATE legacy_orders SET a = 1");
    assert_eq!(
        p.server,
        ServerRef {
            cluster: 1,
            server: 0
        },
        "writes go to the other cluster's primary"
    );
    assert_eq!(w.label("SELECT * FROM orders"), "replica");
    w.session.schema = Some("reports".into());
    assert_eq!(w.label("SELECT * FROM daily"), "backend:replica2");
    assert_eq!(w.label("INSERT INTO daily VALUES (1)"), "primary");
}

#[test]
fn user_route_primary() {
    let mut w = world(false);
    w.session = SessionRouting::new(0, 2, "reporting", None, true);
    assert_eq!(w.plan("SELECT 1").reason, Reason::UserRoute);
}

#[test]
fn diagnostics_follow_the_previous_statement() {
    let mut w = world(false);
    let read = w.run("SELECT 1", AUTOCOMMIT);
    let p = w.plan("SHOW WARNINGS");
    assert_eq!((p.server, p.reason), (read.server, Reason::Diagnostics));
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SELECT 1".to_string()),
        Just("SELECT * FROM audit_x".to_string()),
        Just("SELECT * FROM legacy_t".to_string()),
        Just("INSERT INTO t VALUES (1)".to_string()),
        Just("UPDATE legacy_t SET a = 2".to_string()),
        Just("DELETE FROM audit_x".to_string()),
        Just("SELECT * FROM t FOR UPDATE".to_string()),
        Just("BEGIN".to_string()),
        Just("START TRANSACTION READ ONLY".to_string()),
        Just("COMMIT".to_string()),
        Just("SET autocommit = 0".to_string()),
        Just("SET autocommit = 1".to_string()),
        Just("CREATE TEMPORARY TABLE tt (a INT)".to_string()),
        Just("DROP TEMPORARY TABLE tt".to_string()),
        Just("SELECT @v".to_string()),
        Just("REPLACE INTO t VALUES (3)".to_string()),
    ]
    .prop_flat_map(|sql| {
        prop_oneof![
            Just(sql.clone()),
            Just(format!("/* lagless:replica */ {sql}")),
            Just(format!("/* lagless:backend=replica1 */ {sql}")),
            Just(format!("/* lagless:primary */ {sql}")),
        ]
    })
}

fn is_write(sql: &str) -> bool {
    let c = classify(sql, &LexOptions::default());
    matches!(c.class, StatementClass::Write | StatementClass::LockingRead)
}

proptest! {
    /// Whatever the history, hints and rules: a write never lands on a replica, and inside a
    /// read-write transaction every statement stays on the transaction's server.
    #[test]
    fn writes_never_reach_a_replica(history in proptest::collection::vec(statement(), 1..30), rules in any::<bool>(), optimistic in any::<bool>()) {
        let mut w = world_with(rules, optimistic);
        for sql in &history {
            let plan = w.plan(sql);
            let role = w.view.server(plan.server).role;
            // Inside a READ ONLY transaction the write reaches its replica, which refuses it
            // with ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, exactly as a single server would.
            if is_write(sql) && !(w.session.trx.active && w.session.trx.read_only) {
                prop_assert_eq!(role, Role::Primary, "{} went to a replica after {:?}", sql, history);
            }
            if w.session.trx.active && plan.commit_first.is_none() {
                if let Some(from) = plan.move_from {
                    // An optimistic transaction moves to the primary.
                    prop_assert_eq!(Some(from), w.session.trx.server);
                    prop_assert_eq!(role, Role::Primary);
                } else {
                    prop_assert_eq!(Some(plan.server), w.session.trx.server);
                }
            }
            // Simulate the server's answer: transaction state from what ran.
            let c = classify(sql, &LexOptions::default());
            let mut status = if w.session.trx.autocommit { AUTOCOMMIT } else { 0 };
            match c.class {
                StatementClass::Transaction(TransactionKind::Begin { read_only, .. }) => {
                    status |= IN_TRANS | if read_only { IN_TRANS_RO } else { 0 };
                }
                StatementClass::Transaction(TransactionKind::Commit { .. }) => {}
                StatementClass::Transaction(TransactionKind::SetAutocommit(on)) => {
                    status = if on { AUTOCOMMIT } else { 0 };
                }
                _ if w.session.trx.active || status & AUTOCOMMIT == 0 => {
                    status |= IN_TRANS | if w.session.trx.read_only { IN_TRANS_RO } else { 0 };
                }
                _ => {}
            }
            if plan.new_sticky {
                w.session.sticky[plan.server.cluster] = Some(plan.server);
            }
            w.session.after_plan(&c, &plan, || role == Role::Primary, Some(status), true);
        }
    }
}

/// A model of replication positions in one domain: the session wrote `written` (0: nothing),
/// each replica applied `applied[i]` (None: the monitor does not know).
fn view_with_positions(w: &mut World, applied: &[Option<u64>]) {
    let mut i = 0;
    for s in &mut w.view.clusters[0].servers {
        if s.role == Role::Replica {
            let a = applied[i % applied.len()];
            i += 1;
            s.replica = Some(crate::consistency::ReplicaState {
                gtids: a.map(|seq| format!("0-1-{seq}").parse().unwrap()),
                exec: None,
                seconds_behind: Some(0),
                heartbeat_lag_ms: None,
                caught_up: None,
            });
        }
    }
}

fn mode() -> impl Strategy<Value = lagless_config::Consistency> {
    use lagless_config::Consistency as C;
    use std::time::Duration;
    prop_oneof![
        Just(C::Eventual),
        Just(C::Primary),
        Just(C::PrimaryAfterWrite(Duration::from_millis(100))),
        Just(C::Delay(Duration::from_millis(100))),
        Just(C::MaxLag(Duration::from_secs(1))),
        Just(C::Position),
        Just(C::Gtid),
        Just(C::PosWait(Duration::from_millis(100))),
        Just(C::GtidWait(Duration::from_millis(100))),
        Just(C::Global),
    ]
}

proptest! {
    /// For every mode that promises read-your-writes, a read planned on a replica without a
    /// check goes only to a replica known to have applied the session's write; otherwise the
    /// plan carries a check (which falls back to the primary) or goes to the primary.
    #[test]
    fn read_your_writes_modes_never_plan_an_unchecked_stale_replica(
        m in mode(),
        written in 0u64..5,
        applied in proptest::collection::vec(proptest::option::of(0u64..6), 2),
        seen in proptest::option::of(0u64..6),
        now_ms in 0u64..300,
    ) {
        let mut w = world(false);
        view_with_positions(&mut w, &applied);
        w.session.consistency = m;
        if written > 0 {
            w.session.record_write(&format!("0-1-{written}"), 0);
        }
        let seen_replica = ServerRef { cluster: 0, server: 1 };
        if let Some(seq) = seen {
            w.session.saw(seen_replica, &format!("0-1-{seq}").parse().unwrap());
        }
        let global: crate::gtid::MariaPos = if written > 0 { format!("0-1-{written}").parse().unwrap() } else { Default::default() };
        let c = classify("SELECT v FROM t WHERE id = 1", &LexOptions::default());
        let plan = route(&RouteInput {
            stmt: &c, session: &w.session, view: &w.view, config: &w.config,
            draw: Draw { entropy: 1, turn: 1 }, global: &global, now_ms,
        });
        let on_replica = w.view.server(plan.server).role == Role::Replica;
        if m.read_your_writes() && on_replica && plan.check == ReplicaCheck::None && written > 0 {
            let known = w.view.server(plan.server).replica.as_ref().and_then(|r| r.gtids.as_ref()).and_then(|g| g.seq(0));
            let seen_here = if plan.server == seen_replica { seen } else { None };
            let best = known.max(seen_here).unwrap_or(0);
            prop_assert!(best >= written, "{m}: planned an unchecked read on a replica at {best} < {written}");
        }
        if m == lagless_config::Consistency::Primary {
            prop_assert!(!on_replica);
        }
    }
}

/// A model of one primary's binlog: the transaction with sequence number `n` ends at byte
/// `100 * n` of `bin.000001`.
fn binlog_at(seq: u64) -> crate::consistency::BinlogPos {
    crate::consistency::BinlogPos {
        file: "bin.000001".into(),
        pos: 100 * seq,
    }
}

/// The primary's binlog stream saw up to `streamed` (None: no stream); replica `i` executed up
/// to `applied[i]` by the polls (positions only: no GTIDs known).
fn view_with_binlog(w: &mut World, streamed: Option<u64>, applied: &[u64]) {
    let mut i = 0;
    for s in &mut w.view.clusters[0].servers {
        if s.role == Role::Replica {
            s.replica = Some(crate::consistency::ReplicaState {
                gtids: None,
                exec: Some(binlog_at(applied[i % applied.len()])),
                seconds_behind: Some(0),
                heartbeat_lag_ms: None,
                caught_up: None,
            });
            i += 1;
        } else {
            s.streamed_binlog = streamed.map(|seq| crate::consistency::StreamedBinlog {
                pos: binlog_at(seq),
                through: format!("0-1-{seq}").parse().unwrap(),
            });
        }
    }
}

#[test]
fn position_modes_take_the_writes_position_from_the_primarys_binlog_stream() {
    use lagless_config::Consistency as C;
    use std::time::Duration;
    for m in [C::Position, C::PosWait(Duration::from_millis(100))] {
        // The stream saw the write end (seq 5 at byte 500); one replica executed past it.
        let mut w = world(false);
        view_with_binlog(&mut w, Some(6), &[7, 2]);
        w.session.consistency = m;
        w.session.record_write("0-1-5", 0);
        let plan = w.plan("SELECT v FROM t WHERE id = 1");
        assert_eq!(w.view.server(plan.server).role, Role::Replica, "{m}");
        if plan.check == ReplicaCheck::None {
            let exec = w
                .view
                .server(plan.server)
                .replica
                .as_ref()
                .unwrap()
                .exec
                .clone();
            assert_eq!(exec, Some(binlog_at(7)), "{m}");
        }
        // Not streamed yet and never polled since the write: the primary.
        view_with_binlog(&mut w, Some(4), &[7, 7]);
        let plan = w.plan("SELECT v FROM t WHERE id = 1");
        assert_eq!(w.view.server(plan.server).role, Role::Primary, "{m}");
        view_with_binlog(&mut w, None, &[7, 7]);
        let plan = w.plan("SELECT v FROM t WHERE id = 1");
        assert_eq!(w.view.server(plan.server).role, Role::Primary, "{m}");
        // A causal token (GTIDs, no write time): placed by the stream alone.
        let mut w = world(false);
        w.session.consistency = m;
        w.session.require(&"0-1-5".parse().unwrap());
        view_with_binlog(&mut w, None, &[7, 7]);
        let plan = w.plan("SELECT v FROM t WHERE id = 1");
        assert_eq!(w.view.server(plan.server).role, Role::Primary, "{m}");
        view_with_binlog(&mut w, Some(5), &[7, 7]);
        let plan = w.plan("SELECT v FROM t WHERE id = 1");
        assert_eq!(w.view.server(plan.server).role, Role::Replica, "{m}");
        assert_eq!(plan.check, ReplicaCheck::None, "{m}");
    }
}

proptest! {
    /// Position modes with the write's position from the primary's stream: an unchecked read
    /// on a replica only where the replica executed past the write's end, and a
    /// MASTER_POS_WAIT never for a position before it.
    #[test]
    fn position_modes_never_plan_a_replica_short_of_the_write(
        pos_wait in any::<bool>(),
        written in 1u64..6,
        streamed in proptest::option::of(0u64..8),
        applied in proptest::collection::vec(0u64..8, 2),
    ) {
        let mut w = world(false);
        view_with_binlog(&mut w, streamed, &applied);
        w.session.consistency = if pos_wait {
            lagless_config::Consistency::PosWait(std::time::Duration::from_millis(100))
        } else {
            lagless_config::Consistency::Position
        };
        w.session.record_write(&format!("0-1-{written}"), 0);
        let plan = w.plan("SELECT v FROM t WHERE id = 1");
        let server = w.view.server(plan.server);
        if server.role == Role::Replica {
            match &plan.check {
                ReplicaCheck::None => {
                    let exec = server.replica.as_ref().and_then(|r| r.exec.as_ref()).unwrap();
                    prop_assert!(exec.pos >= 100 * written, "{exec:?} short of {written}");
                }
                ReplicaCheck::PosWait { pos, .. } => prop_assert!(pos.pos >= 100 * written),
                other => prop_assert!(false, "unexpected check {other:?}"),
            }
        }
        // Once the stream has the write and a replica executed past it, a replica serves.
        if streamed.is_some_and(|s| s >= written) && applied.iter().any(|&a| a >= streamed.unwrap_or(0)) {
            prop_assert_eq!(server.role, Role::Replica);
        }
    }
}
