//! Automatic failover end to end, each fault under a continuous client workload through the
//! proxy (a client inserting in autocommit on a thread of its own) and a verifier that compares
//! the acknowledged inserts with what the primary holds at the end, read directly on it.
//!
//! Each fault test prints one `FAULT-RESULT {json}` line (see `lagless_e2e::faults`): time from
//! the fault to the first acknowledged write, client-visible errors by kind, acknowledged writes
//! lost. `scripts/faults.sh` runs them repeatedly in release mode and tabulates those lines.
//!
//! `LAGLESS_FAULT_SIGSTOP_MS` sets how long the primary stays stopped in the SIGSTOP test
//! (3 s here by default, 10 s in `scripts/faults.sh`).

mod common;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::insert_load;
use lagless_e2e::faults::{
    cpu_time, create_table, failovers_logged, ids_on, is_fenced, kill_marked, machine_cpu, ms,
    replicates_from, sigstop_hold, stop_marked, the_primary, wait_for, FaultClock, FaultResult,
    LoadReport, Lost,
};
use lagless_e2e::raw::{self, raw_login};
use lagless_e2e::{app_url, rt, Env, EnvOptions};
use lagless_protocol::consts::{
    CLIENT_PROTOCOL_41, SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS,
};
use lagless_protocol::ok_err::{ErrPacket, OkPacket};
use mysql_async::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_lagless");

/// The CPU test loads both cores: it runs alone, the other tests of this file share.
static CPU: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    CPU.write().unwrap_or_else(|e| e.into_inner())
}

fn failover_env() -> Env {
    Env::start_with(BIN.as_ref(), &EnvOptions::failover()).unwrap()
}

/// The server id the proxy at `url` sends writes to (asked for up to 10 s: the proxy may be
/// between primaries).
fn primary_behind(url: &str) -> u32 {
    rt().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = async {
                let mut c = mysql_async::Conn::from_url(url).await?;
                c.query_first::<u32, _>("/* lagless:primary */ SELECT @@server_id")
                    .await
            }
            .await;
            match r {
                Ok(Some(id)) => return id,
                r if Instant::now() > deadline => panic!("no primary behind {url}: {r:?}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Every acknowledged insert of `reports` on the writable server, which must be the one the
/// proxies route writes to: returns how many were acknowledged, and the missing ones with how
/// long before `fault` each was acknowledged. With `fenced`, that server must be the only
/// writable one.
fn verify(
    env: &Env,
    proxies: &[String],
    table: &str,
    reports: &[&LoadReport],
    clock: &FaultClock,
    fault: &str,
) -> (usize, Vec<Lost>) {
    let sid = primary_behind(&proxies[0]);
    for url in &proxies[1..] {
        assert_eq!(
            primary_behind(url),
            sid,
            "the proxies route writes to one server"
        );
    }
    let primary = env
        .sandbox
        .servers()
        .iter()
        .find(|s| s.server_id() == sid)
        .expect("a server of the sandbox");
    let present = ids_on(primary, table).unwrap();
    let (mut acked, mut lost) = (0, Vec::new());
    for r in reports {
        acked += r.acked().len();
        lost.extend(r.lost_around(&present, clock, fault));
    }
    println!(
        "{table}: acknowledged {acked}, on {} {}, lost (id, ms acknowledged before the fault) {lost:?}",
        primary.name(),
        present.len()
    );
    (acked, lost)
}

/// With semi-sync nothing acknowledged may be lost. Asynchronous replication can lose what the
/// dying primary had committed and not sent: writes sent before the fault and acknowledged in
/// its last moments (one second is far more than the sandbox's replication delay; the OK may
/// also reach the client just after the fault), never a write sent after it. The fault is
/// marked just before the signal is sent and takes effect when the process is seen gone or
/// stopped: a write sent in between may still be committed by the old primary.
fn assert_no_loss_beyond_replication(semi_sync: bool, lost: &[Lost]) {
    if semi_sync {
        assert!(
            lost.is_empty(),
            "acknowledged writes lost with semi-sync: {lost:?}"
        );
    } else {
        assert!(
            lost.iter()
                .all(|l| l.sent_before && l.acked_ms_before <= 1000.0),
            "acknowledged writes lost beyond what asynchronous replication may lose: {lost:?}"
        );
    }
}

fn lost_ms(lost: &[Lost]) -> Vec<f64> {
    lost.iter().map(|l| l.acked_ms_before).collect()
}

#[test]
fn kill_9_of_the_primary_fails_over_with_at_most_the_in_flight_statement_lost() {
    kill_9_under_insert_load(false);
}

/// With semi-synchronous replication (AFTER_SYNC) an acknowledged insert is in a replica's relay
/// log before the client hears of it, and the failover promotes the replica that received the
/// most: no acknowledged insert can be lost.
#[test]
fn kill_9_with_semi_sync_loses_no_acknowledged_write() {
    kill_9_under_insert_load(true);
}

/// kill -9 of the primary, then, after the failover, a restart of the old primary: it must be
/// fenced (read-only) and rejoin as a replica, or stay quarantined when it holds transactions
/// the new primary lacks. The insert load runs throughout.
fn kill_9_under_insert_load(semi_sync: bool) {
    let _g = shared();
    let env = Env::start_with(
        BIN.as_ref(),
        &EnvOptions {
            semi_sync,
            ..EnvOptions::failover()
        },
    )
    .unwrap();
    create_table(&env.sandbox, "fo").unwrap();
    let clock = FaultClock::default();
    let load = insert_load("writer", env.url(), "fo", 0);
    load.wait_acked(200, Duration::from_secs(20)).unwrap();
    let old = env.sandbox.primary();
    let killed = kill_marked(&clock, "kill9", old).unwrap();
    let took = load
        .wait_first_ack(&clock, "kill9", Duration::from_secs(20))
        .unwrap();
    load.wait_acked(load.acked() + 200, Duration::from_secs(20))
        .unwrap();

    // The old primary comes back: fenced at once, then rejoined or quarantined. No client
    // statement reaches it as a primary (the verifier would miss those writes).
    let restarting = clock.mark("restart_old_primary");
    old.restart().unwrap();
    let up = restarting.elapsed();
    let fenced = wait_for(Duration::from_secs(15), "the old primary fenced", || {
        is_fenced(old)
    })
    .unwrap();
    let new = the_primary(&env.sandbox).unwrap();
    assert_ne!(new.server_id(), 1, "a replica was promoted");
    assert_eq!(
        primary_behind(&env.url()),
        new.server_id(),
        "the proxy routes writes to the one writable server"
    );
    let settled = wait_for(Duration::from_secs(15), "rejoined or quarantined", || {
        replicates_from(old, new) || env.proxy.stderr().contains("former primary quarantined")
    })
    .unwrap();
    let old_state = if replicates_from(old, new) {
        "rejoined"
    } else {
        "quarantined"
    };
    load.wait_acked(load.acked() + 100, Duration::from_secs(10))
        .unwrap();
    let report = load.stop();

    let (acked, lost) = verify(&env, &[env.url()], "fo", &[&report], &clock, "kill9");
    let kill = report.phase(&clock, "kill9");
    let restart = report.phase(&clock, "restart_old_primary");
    // What was acknowledged after the old primary's restart began.
    let lost_after_restart = lost
        .iter()
        .filter(|l| l.acked_ms_before < -ms(restarting - killed))
        .count();
    FaultResult::new("kill9", semi_sync, &kill, acked, lost.len())
        .with("lost_acked_ms_before_kill", lost_ms(&lost))
        .print();
    FaultResult::new(
        "restart_old_primary",
        semi_sync,
        &restart,
        acked,
        lost_after_restart,
    )
    .with("server_up_ms", ms(up))
    .with("fenced_ms", ms(up + fenced))
    .with("settled_ms", ms(up + fenced + settled))
    .with("old_primary", old_state)
    .print();
    println!(
        "kill -9 (semi-sync: {semi_sync}) → first acknowledged write: {took:?}; client errors: {:?}",
        kill.messages
    );
    assert_no_loss_beyond_replication(semi_sync, &lost);
    assert_eq!(lost_after_restart, 0);
    assert!(
        kill.error_count() <= 1 && kill.errors.keys().all(|k| k == "9002"),
        "only the statement in flight may fail: {:?}",
        kill.messages
    );
    assert_eq!(
        restart.error_count(),
        0,
        "the old primary's return is invisible to clients: {:?}",
        restart.messages
    );
    assert!(took < Duration::from_secs(5), "failover took {took:?}");
}

/// SIGSTOP of the primary, held `LAGLESS_FAULT_SIGSTOP_MS` (3 s by default, and at least until a
/// replica was promoted), then SIGCONT: the old primary comes back fenced, and the acknowledged
/// inserts are on the new primary (all of them with semi-sync; asynchronous replication can
/// lose the last ones the primary had not sent when it stopped).
#[test]
fn a_hung_primary_is_failed_over_and_comes_back_fenced() {
    sigstop_under_insert_load(false);
}

/// With semi-sync the insert in flight when the primary stopped resumes at SIGCONT waiting for
/// a replica's acknowledgement that will not come (the replicas follow the new primary); the
/// fence switches semi-sync off first, so `SET GLOBAL read_only = 1` does not wait for it.
#[test]
fn a_hung_semi_sync_primary_is_failed_over_without_losing_acknowledged_writes() {
    sigstop_under_insert_load(true);
}

fn sigstop_under_insert_load(semi_sync: bool) {
    let _g = shared();
    let hold = sigstop_hold(Duration::from_secs(3));
    let env = Env::start_with(
        BIN.as_ref(),
        &EnvOptions {
            semi_sync,
            ..EnvOptions::failover()
        },
    )
    .unwrap();
    create_table(&env.sandbox, "hung").unwrap();
    let clock = FaultClock::default();
    let load = insert_load("writer", env.url(), "hung", 0);
    load.wait_acked(200, Duration::from_secs(20)).unwrap();
    let old = env.sandbox.primary();
    let stopped = stop_marked(&clock, "sigstop", old).unwrap();
    // The insert in flight on the hung primary ends with an error once a replica is promoted
    // (its outcome is unknown); the client's next insert goes to the new primary.
    let took = load.wait_first_ack(&clock, "sigstop", Duration::from_secs(20));
    std::thread::sleep(hold.saturating_sub(stopped.elapsed()));
    let held = stopped.elapsed();
    old.resume().unwrap();
    let took = took.unwrap();
    // The result line is printed whether or not the old primary gets fenced.
    let fenced = wait_for(Duration::from_secs(15), "the old primary fenced", || {
        is_fenced(old)
    });
    let new_id = primary_behind(&env.url());
    assert_ne!(new_id, 1, "a replica was promoted");
    let new = env
        .sandbox
        .servers()
        .iter()
        .find(|s| s.server_id() == new_id)
        .unwrap();
    let (settled, old_state) = match &fenced {
        Ok(_) => {
            let settled = wait_for(Duration::from_secs(15), "rejoined or quarantined", || {
                replicates_from(old, new)
                    || env.proxy.stderr().contains("former primary quarantined")
            })
            .unwrap();
            let state = if replicates_from(old, new) {
                "rejoined"
            } else {
                "quarantined"
            };
            (Some(settled), state)
        }
        Err(_) => (None, "not fenced (writable)"),
    };
    load.wait_acked(load.acked() + 100, Duration::from_secs(10))
        .unwrap();
    let report = load.stop();

    let (acked, lost) = verify(&env, &[env.url()], "hung", &[&report], &clock, "sigstop");
    let phase = report.phase(&clock, "sigstop");
    let fenced_ms = fenced.as_ref().ok().map(|f| ms(*f));
    FaultResult::new("sigstop", semi_sync, &phase, acked, lost.len())
        .with("lost_acked_ms_before_stop", lost_ms(&lost))
        .with("held_ms", ms(held))
        .with("fenced_ms_after_sigcont", fenced_ms)
        .with(
            "settled_ms_after_sigcont",
            fenced.as_ref().ok().zip(settled).map(|(f, s)| ms(*f + s)),
        )
        .with("old_primary", old_state)
        .print();
    println!(
        "SIGSTOP held {held:?} → first acknowledged write after {took:?}; errors: {:?}",
        phase.messages
    );
    // Each failover step with its duration, for the fault runs' logs (scripts/faults.sh).
    for line in env.proxy.stderr().lines() {
        if line.contains("failover step") || line.contains("failover done") {
            println!("proxy: {line}");
        }
    }
    // Stopped just after acknowledging a write, the primary may not have sent it yet: the
    // same window as a kill.
    assert_no_loss_beyond_replication(semi_sync, &lost);
    // Semi-sync is switched off on it first: its commits waiting for an acknowledgement do
    // not hold `read_only = 1` back for rpl_semi_sync_master_timeout (10 s) any more.
    let fenced = fenced.unwrap();
    assert!(
        fenced < Duration::from_secs(5),
        "old primary fenced {fenced:?} after SIGCONT"
    );
    assert_eq!(the_primary(&env.sandbox).unwrap().server_id(), new_id);
    assert!(
        phase.error_count() <= 1
            && phase
                .messages
                .iter()
                .all(|m| m.contains("outcome is unknown")),
        "only the statement in flight may fail: {:?}",
        phase.messages
    );
}

#[test]
fn a_transaction_open_on_the_dead_primary_is_lost_cleanly() {
    let _g = shared();
    let env = failover_env();
    create_table(&env.sandbox, "trx_lost").unwrap();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO trx_lost VALUES (1)")
            .await
            .unwrap();
        env.sandbox.primary().kill().unwrap();
        let err = c
            .query_drop("INSERT INTO trx_lost VALUES (2)")
            .await
            .expect_err("the transaction's server died");
        assert!(err.to_string().contains("9002"), "{err}");
        // Until the client ends it, the lost transaction refuses statements...
        let err = c
            .query_drop("INSERT INTO trx_lost VALUES (3)")
            .await
            .expect_err("transaction lost");
        assert!(err.to_string().contains("ROLLBACK to continue"), "{err}");
        // ...ROLLBACK ends it, and the session goes on against the new primary.
        c.query_drop("ROLLBACK").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c
            .query_drop("INSERT INTO trx_lost VALUES (4)")
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "no write after the failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ids: Vec<i32> = c
            .query("/* lagless:primary */ SELECT id FROM trx_lost ORDER BY id")
            .await
            .unwrap();
        assert_eq!(
            ids,
            vec![4],
            "nothing of the lost transaction was applied piecemeal"
        );
    });
}

/// `[failover] transaction_replay = true`: the transaction open when the primary is killed goes
/// on on the new primary, replayed there, without an error for the client; all of it commits
/// once.
#[test]
fn a_transaction_open_on_the_dead_primary_is_replayed_on_the_new_one() {
    let _g = shared();
    let mut opts = EnvOptions::failover();
    opts.extra = opts
        .extra
        .replace("[failover]\n", "[failover]\ntransaction_replay = true\n");
    let env = Env::start_with(BIN.as_ref(), &opts).unwrap();
    create_table(&env.sandbox, "trx_replayed").unwrap();
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("INSERT INTO trx_replayed VALUES (1)")
            .await
            .unwrap();
        let n: i64 = c
            .query_first("SELECT COUNT(*) FROM trx_replayed")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        env.sandbox.primary().kill().unwrap();
        let killed = Instant::now();
        c.query_drop("INSERT INTO trx_replayed VALUES (2)")
            .await
            .expect("the transaction goes on on the new primary");
        eprintln!("the statement after the kill took {:?}", killed.elapsed());
        c.query_drop("COMMIT").await.unwrap();
        let rows: Vec<(String, String)> = c.query("SHOW LAGLESS STATUS").await.unwrap();
        assert!(
            rows.contains(&("transactions_resumed".into(), "1".into())),
            "{rows:?}"
        );
        let ids: Vec<i32> = c
            .query("/* lagless:primary */ SELECT id FROM trx_replayed ORDER BY id")
            .await
            .unwrap();
        assert_eq!(ids, vec![1, 2]);
        let sid: u32 = c
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(sid, 1, "committed on the new primary");
    });
}

/// A session with autocommit=0 (`INSERT ...; COMMIT` repeatedly): the transaction open when
/// the primary is killed is lost cleanly (an error, then the client's ROLLBACK), and the same
/// connection goes on with autocommit=0 on the new primary: its inserts are invisible to other
/// connections until it commits.
#[test]
fn an_autocommit_0_session_keeps_its_semantics_across_a_failover() {
    let _g = shared();
    let env = failover_env();
    create_table(&env.sandbox, "ac").unwrap();
    let on_primary = |id: u64| {
        let p = the_primary(&env.sandbox).unwrap();
        ids_on(p, "ac").unwrap().contains(&id)
    };
    rt().block_on(async {
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("SET autocommit = 0").await.unwrap();
        for id in 1..=5 {
            c.exec_drop("INSERT INTO ac VALUES (?)", (id,))
                .await
                .unwrap();
            assert!(!on_primary(id), "{id} is invisible before COMMIT");
            c.query_drop("COMMIT").await.unwrap();
            assert!(on_primary(id), "{id} is visible after COMMIT");
        }
        // A transaction is open (implicitly) when the primary dies.
        c.exec_drop("INSERT INTO ac VALUES (?)", (6,))
            .await
            .unwrap();
        env.sandbox.primary().kill().unwrap();
        let err = c
            .exec_drop("INSERT INTO ac VALUES (?)", (7,))
            .await
            .expect_err("the transaction's server died");
        assert!(err.to_string().contains("9002"), "{err}");
        let err = c
            .exec_drop("INSERT INTO ac VALUES (?)", (8,))
            .await
            .expect_err("transaction lost");
        assert!(err.to_string().contains("ROLLBACK to continue"), "{err}");
        c.query_drop("ROLLBACK").await.unwrap();

        // The same connection on the new primary: still autocommit=0.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut errors = Vec::new();
        while let Err(e) = c.exec_drop("INSERT INTO ac VALUES (?)", (9,)).await {
            errors.push(e.to_string());
            assert!(
                Instant::now() < deadline,
                "no write after the failover: {errors:?}"
            );
            let _ = c.query_drop("ROLLBACK").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            errors.is_empty(),
            "writes wait for the new primary: {errors:?}"
        );
        let sid: u32 = c
            .query_first("/* lagless:primary */ SELECT @@server_id")
            .await
            .unwrap()
            .unwrap();
        assert_ne!(sid, 1, "a replica was promoted");
        assert_eq!(sid, the_primary(&env.sandbox).unwrap().server_id());
        let autocommit: i64 = c.query_first("SELECT @@autocommit").await.unwrap().unwrap();
        assert_eq!(autocommit, 0, "the session's autocommit on the new primary");
        assert!(
            !on_primary(9),
            "an insert without COMMIT is invisible to others"
        );
        c.query_drop("COMMIT").await.unwrap();
        assert!(on_primary(9), "visible after COMMIT");
        c.exec_drop("INSERT INTO ac VALUES (?)", (10,))
            .await
            .unwrap();
        assert!(!on_primary(10), "still autocommit=0 after that COMMIT");
        c.query_drop("ROLLBACK").await.unwrap();

        let p = the_primary(&env.sandbox).unwrap();
        assert_eq!(
            ids_on(p, "ac").unwrap().into_iter().collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 9],
            "the committed rows, nothing of the lost transaction nor of the rolled back one"
        );
    });
}

/// After a transaction lost with its primary, an autocommit=0 session is still autocommit=0 for
/// the proxy and for the client: the OK to its ROLLBACK does not set the autocommit status flag
/// (connectors such as PyMySQL read autocommit from it), and its next read opens a transaction
/// on the primary, as before the failover, instead of going to a replica.
#[test]
fn after_a_lost_transaction_an_autocommit_0_session_is_still_autocommit_0() {
    let _g = shared();
    let env = failover_env();
    create_table(&env.sandbox, "ac0").unwrap();
    rt().block_on(async {
        // A raw client shows the status flags of each OK (mysql_async does not expose them).
        let mut r = raw_login(env.port(), "app", "lagless", 0).await.unwrap();
        let status = ok(&mut r, "SET autocommit = 0").await.unwrap();
        assert_eq!(status & SERVER_STATUS_AUTOCOMMIT, 0, "{status:#x}");
        let status = ok(&mut r, "INSERT INTO ac0 VALUES (1)").await.unwrap();
        assert_eq!(
            status & (SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS_IN_TRANS),
            SERVER_STATUS_IN_TRANS,
            "{status:#x}"
        );
        let mut c = mysql_async::Conn::from_url(env.url()).await.unwrap();
        c.query_drop("SET autocommit = 0").await.unwrap();
        // With autocommit off a read opens a transaction: on the primary.
        let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
        assert_eq!(sid, 1, "an autocommit=0 session reads on the primary");
        c.query_drop("INSERT INTO ac0 VALUES (2)").await.unwrap();

        env.sandbox.primary().kill().unwrap();
        let mut w = mysql_async::Conn::from_url(env.url()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while w.query_drop("INSERT INTO ac0 VALUES (1000)").await.is_err() {
            assert!(Instant::now() < deadline, "no write after the failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let new = the_primary(&env.sandbox).unwrap().server_id();

        ok(&mut r, "INSERT INTO ac0 VALUES (3)")
            .await
            .expect_err("the transaction's server died");
        let rollback = ok(&mut r, "ROLLBACK").await.unwrap();
        c.query_drop("INSERT INTO ac0 VALUES (4)")
            .await
            .expect_err("the transaction's server died");
        c.query_drop("ROLLBACK").await.unwrap();
        let sid: u32 = c.query_first("SELECT @@server_id").await.unwrap().unwrap();
        println!("after the lost transaction: ROLLBACK's status {rollback:#x}, the next read on server {sid} (primary: {new})");
        assert_eq!(
            rollback & SERVER_STATUS_AUTOCOMMIT,
            0,
            "the OK to the ROLLBACK of the lost transaction says autocommit is on: {rollback:#x}"
        );
        assert_eq!(
            sid, new,
            "the next read of the autocommit=0 session opens a transaction on the primary"
        );
    });
}

/// Runs a statement that answers OK on a raw session: the OK's status flags, or the error as
/// `CODE message`.
async fn ok(c: &mut lagless_backend::Login, sql: &str) -> Result<u16, String> {
    let payload = [&[0x03u8][..], sql.as_bytes()].concat();
    raw::send(c, &payload).await.map_err(|e| e.to_string())?;
    let p = raw::recv(c).await.map_err(|e| e.to_string())?;
    match p.payload.first() {
        Some(0x00) => Ok(OkPacket::parse(&p.payload, CLIENT_PROTOCOL_41)
            .expect("an OK packet")
            .status),
        Some(0xFF) => {
            let e = ErrPacket::parse(&p.payload).expect("an ERR packet");
            Err(format!("{} {}", e.code, e.message))
        }
        _ => panic!("{sql}: neither OK nor ERR: {:?}", p.payload),
    }
}

#[test]
fn switchover_under_write_load_loses_nothing_and_shows_no_error() {
    let _g = shared();
    let env = failover_env();
    create_table(&env.sandbox, "sw").unwrap();
    let clock = FaultClock::default();
    let load = insert_load("writer", env.url(), "sw", 0);
    load.wait_acked(200, Duration::from_secs(20)).unwrap();
    let started = clock.mark("switchover");
    let out = std::process::Command::new(BIN)
        .args(["switchover", "--to", "replica2", "--admin"])
        .arg(format!("127.0.0.1:{}", env.admin_port))
        .output()
        .unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    load.wait_acked(load.acked() + 200, Duration::from_secs(10))
        .unwrap();
    let report = load.stop();
    println!("{text}");
    let (acked, lost) = verify(&env, &[env.url()], "sw", &[&report], &clock, "switchover");
    let phase = report.phase(&clock, "switchover");
    FaultResult::new("switchover", false, &phase, acked, lost.len())
        .with("command_ms", ms(took))
        .print();
    assert_eq!(
        the_primary(&env.sandbox).unwrap().server_id(),
        3,
        "replica2 is the primary"
    );
    assert_eq!(phase.error_count(), 0, "{:?}", phase.messages);
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

#[test]
fn two_proxies_promote_one_primary_and_both_route_to_it() {
    two_proxies_under_insert_load(false);
}

#[test]
fn two_proxies_with_semi_sync_lose_no_acknowledged_write() {
    two_proxies_under_insert_load(true);
}

/// Two proxies on one sandbox, each with its own client inserting, and a kill -9 of the
/// primary: one promotion, both proxies route writes to it.
fn two_proxies_under_insert_load(semi_sync: bool) {
    let _g = shared();
    let opts = EnvOptions {
        semi_sync,
        ..EnvOptions::failover()
    };
    let env = Env::start_with(BIN.as_ref(), &opts).unwrap();
    let (second, _) = env.another_proxy(BIN.as_ref(), &opts).unwrap();
    create_table(&env.sandbox, "two").unwrap();
    let clock = FaultClock::default();
    // Both proxies get writes, in separate id ranges.
    let a = insert_load("proxy1", env.url(), "two", 0);
    let b = insert_load("proxy2", app_url(second.port), "two", 1_000_000_000);
    a.wait_acked(100, Duration::from_secs(20)).unwrap();
    b.wait_acked(100, Duration::from_secs(20)).unwrap();
    kill_marked(&clock, "kill9", env.sandbox.primary()).unwrap();
    let took_a = a
        .wait_first_ack(&clock, "kill9", Duration::from_secs(20))
        .unwrap();
    let took_b = b
        .wait_first_ack(&clock, "kill9", Duration::from_secs(20))
        .unwrap();
    a.wait_acked(a.acked() + 100, Duration::from_secs(10))
        .unwrap();
    b.wait_acked(b.acked() + 100, Duration::from_secs(10))
        .unwrap();
    let (ra, rb) = (a.stop(), b.stop());
    // Exactly one server is writable (the_primary checks), both proxies route to it.
    let (acked, lost) = verify(
        &env,
        &[env.url(), app_url(second.port)],
        "two",
        &[&ra, &rb],
        &clock,
        "kill9",
    );
    let (pa, pb) = (ra.phase(&clock, "kill9"), rb.phase(&clock, "kill9"));
    let phase = pa.merge(&pb);
    FaultResult::new("two_proxies", semi_sync, &phase, acked, lost.len())
        .with("first_write_ms_per_proxy", vec![ms(took_a), ms(took_b)])
        .with("lost_acked_ms_before_kill", lost_ms(&lost))
        .print();
    println!("two proxies: errors {:?}", phase.messages);
    assert_no_loss_beyond_replication(semi_sync, &lost);
    assert!(
        pa.error_count() <= 1 && pb.error_count() <= 1,
        "only each client's statement in flight may fail: {:?}",
        phase.messages
    );
    let new = the_primary(&env.sandbox).unwrap();
    assert_eq!(
        primary_behind(&env.url()),
        new.server_id(),
        "the proxies route writes to the one writable server"
    );
    for r in env.sandbox.replicas() {
        if r.server_id() != new.server_id() {
            assert!(
                replicates_from(r, new),
                "{} follows the new primary",
                r.name()
            );
        }
    }
    drop(second);
}

/// A primary at 100% CPU (CPU-bound queries on more sessions than there are cores, run
/// directly on it) while a client writes through the proxy, with failover on and the demo's
/// 100 ms monitor: no failover, the same server stays primary, and every write succeeds.
#[test]
fn a_primary_at_full_cpu_is_not_failed_over() {
    let _g = exclusive();
    let busy_for = Duration::from_secs(5);
    let env = failover_env();
    create_table(&env.sandbox, "cpu").unwrap();
    let primary = env.sandbox.primary();
    let clock = FaultClock::default();
    let load = insert_load("writer", env.url(), "cpu", 0);
    load.wait_acked(100, Duration::from_secs(20)).unwrap();
    let pid = primary.pid().expect("the primary runs");
    let cpu_before = cpu_time(pid).unwrap();
    let machine_before = machine_cpu().unwrap();
    let started = clock.mark("cpu_busy_primary");
    let admin = env.sandbox.users().admin.clone();
    let burners: Vec<_> = (0..4)
        .map(|_| {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(primary.port())
                .user(Some(admin.user.clone()))
                .pass(Some(admin.password.clone()))
                .prefer_socket(false);
            std::thread::spawn(move || {
                rt().block_on(async {
                    let mut c = mysql_async::Conn::new(opts).await.unwrap();
                    let mut queries = 0u32;
                    while started.elapsed() < busy_for {
                        // Aborted by the server after 1 s (error 1969) if it runs that long.
                        let _ = c
                            .query_drop(
                                "SET STATEMENT max_statement_time = 1 FOR \
                                 SELECT BENCHMARK(50000000, MD5('x'))",
                            )
                            .await;
                        queries += 1;
                    }
                    queries
                })
            })
        })
        .collect();
    let queries: u32 = burners.into_iter().map(|b| b.join().unwrap()).sum();
    let busy = started.elapsed();
    let cpu = cpu_time(pid).unwrap() - cpu_before;
    let machine_after = machine_cpu().unwrap();
    let machine_pct = ((machine_after.0 - machine_before.0) as f64
        / (machine_after.1 - machine_before.1).max(1) as f64
        * 100.0)
        .round();
    // A few more monitor rounds after the load: a late verdict would show here.
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();

    let failovers = failovers_logged(&env.proxy.stderr());
    let (status, body) = lagless_e2e::admin_request(env.admin_port, "GET", "/status");
    assert_eq!(status, 200);
    let ha_events = body["ha_events"]
        .as_array()
        .expect("ha_events in GET /status")
        .clone();
    let (acked, lost) = verify(
        &env,
        &[env.url()],
        "cpu",
        &[&report],
        &clock,
        "cpu_busy_primary",
    );
    let phase = report.phase(&clock, "cpu_busy_primary");
    let cpu_pct = (cpu.as_secs_f64() / busy.as_secs_f64() * 100.0).round();
    FaultResult::new("cpu_busy_primary", false, &phase, acked, lost.len())
        .with("failovers", failovers)
        .with("ha_events", ha_events.len())
        .with("primary_cpu_pct", cpu_pct)
        .with("machine_cpu_busy_pct", machine_pct)
        .with("benchmark_queries", queries)
        .with("busy_ms", ms(busy))
        .print();
    assert_eq!(failovers, 0, "a busy primary was failed over");
    assert!(ha_events.is_empty(), "HA events: {ha_events:?}");
    assert_eq!(the_primary(&env.sandbox).unwrap().server_id(), 1);
    for r in env.sandbox.replicas() {
        assert!(
            replicates_from(r, primary),
            "{} follows the primary",
            r.name()
        );
    }
    let (status, body) = lagless_e2e::admin_request(env.admin_port, "GET", "/replication");
    assert_eq!(status, 200);
    let roles: Vec<(String, String)> = body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["role"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        roles.contains(&("primary".into(), "primary".into()))
            && roles.iter().filter(|(_, r)| r == "primary").count() == 1,
        "the monitor sees the same primary: {roles:?}"
    );
    assert_eq!(phase.error_count(), 0, "{:?}", phase.messages);
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // The machine is shared (replicas, proxy, client, other builds): the primary's share of
    // it varies with what else runs (printed), but the cores must have been saturated while
    // the burners ran.
    assert!(
        machine_pct >= 90.0 && queries >= 4,
        "not busy: the machine {machine_pct}%, {queries} BENCHMARK queries (the primary {cpu_pct}% of a core)"
    );
}
