//! Fault-test support: a continuous client workload on a thread of its own, the record of what
//! its client saw around each fault, a verifier that compares acknowledged writes with what a
//! server holds, and the one machine-readable line each fault test prints:
//!
//! ```text
//! FAULT-RESULT {"fault":"kill9","semi_sync":false,"first_write_ms":71.2,"errors":{"9002":1},"acked":812,"lost":0,...}
//! ```
//!
//! `scripts/faults.sh` collects those lines over several runs into one table.
//!
//! The workload's statements are a closure (this crate has no client library of its own): the
//! test builds its connection, and maps its client's errors to a [`ClientError`] whose `kind` is
//! the error code (`"9002"`) or the kind of client failure (`"io"`, `"driver"`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lagless_sandbox::{Sandbox, Server};
use nix::sys::signal::Signal;
use serde_json::{json, Map, Value};

/// What the client saw instead of a success.
#[derive(Debug, Clone)]
pub struct ClientError {
    /// The server error code as text (`"9002"`), or the client's own kind (`"io"`, `"driver"`).
    pub kind: String,
    pub message: String,
}

/// One statement of a workload.
#[derive(Debug, Clone)]
struct Op {
    id: u64,
    sent: Instant,
    done: Instant,
    error: Option<ClientError>,
}

/// Faults marked during a run, in order: each opens a phase that lasts until the next mark.
///
/// A fault has two instants: when it was injected (the mark, just before the signal), and when
/// it was seen to have taken effect (the process gone, or all its threads stopped). A signal is
/// not acted on at once, all the more on a loaded machine: between the two, the server may
/// still commit and acknowledge statements.
#[derive(Debug, Clone, Default)]
pub struct FaultClock(Arc<Mutex<Vec<Mark>>>);

#[derive(Debug, Clone)]
struct Mark {
    name: String,
    at: Instant,
    effective: Option<Instant>,
}

impl FaultClock {
    /// Marks fault `name` as happening now (call it just before injecting the fault).
    pub fn mark(&self, name: &str) -> Instant {
        let now = Instant::now();
        self.0.lock().unwrap().push(Mark {
            name: name.to_string(),
            at: now,
            effective: None,
        });
        now
    }

    /// Records that fault `name` has now taken effect.
    pub fn took_effect(&self, name: &str) -> Instant {
        let now = Instant::now();
        let mut marks = self.0.lock().unwrap();
        let m = marks
            .iter_mut()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("fault {name} was not marked"));
        m.effective = Some(now);
        now
    }

    /// Fault `name`: when it was marked, when it took effect (the mark if not recorded), and
    /// when the next fault was marked (the end of its phase).
    fn phase(&self, name: &str) -> Option<(Instant, Instant, Option<Instant>)> {
        let marks = self.0.lock().unwrap();
        let i = marks.iter().position(|m| m.name == name)?;
        let m = &marks[i];
        Some((
            m.at,
            m.effective.unwrap_or(m.at),
            marks.get(i + 1).map(|m| m.at),
        ))
    }
}

/// A client running statements back to back on its own thread until stopped: statement `n`
/// gets the id `first_id + n`. After an error it waits 5 ms before the next statement (a
/// client retrying in a tight loop would only count the same outage many times).
pub struct Load {
    name: String,
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Vec<Op>>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Load {
    /// Starts the workload. `connect` runs on the new thread and returns the statement to run
    /// for each id (typically owning a current-thread runtime and a connection).
    pub fn spawn<C, F>(name: &str, first_id: u64, connect: C) -> Load
    where
        C: FnOnce() -> Result<F> + Send + 'static,
        F: FnMut(u64) -> Result<(), ClientError>,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, ops) = (stop.clone(), ops.clone());
            std::thread::Builder::new()
                .name(format!("load-{name}"))
                .spawn(move || {
                    let mut run = connect()?;
                    let mut id = first_id;
                    while !stop.load(Ordering::Relaxed) {
                        id += 1;
                        let sent = Instant::now();
                        let error = run(id).err();
                        let failed = error.is_some();
                        ops.lock().unwrap().push(Op {
                            id,
                            sent,
                            done: Instant::now(),
                            error,
                        });
                        if failed {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    Ok(())
                })
                .expect("a load thread")
        };
        Load {
            name: name.to_string(),
            stop,
            ops,
            thread: Some(thread),
        }
    }

    /// Statements acknowledged so far.
    pub fn acked(&self) -> usize {
        self.ops
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.error.is_none())
            .count()
    }

    /// Waits until `n` statements were acknowledged in all.
    pub fn wait_acked(&self, n: usize, timeout: Duration) -> Result<()> {
        wait_for(timeout, &format!("{n} statements of {}", self.name), || {
            self.acked() >= n
        })
        .map(drop)
    }

    /// Waits for the acknowledgement of the first statement sent after fault `name` took
    /// effect; returns how long after the fault's mark it came.
    pub fn wait_first_ack(
        &self,
        clock: &FaultClock,
        name: &str,
        timeout: Duration,
    ) -> Result<Duration> {
        let (at, effective, _) = clock
            .phase(name)
            .unwrap_or_else(|| panic!("fault {name} was not marked"));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = first_ack_after(&self.ops.lock().unwrap(), at, effective) {
                return Ok(t);
            }
            if Instant::now() > deadline {
                let errors: Vec<String> = self
                    .ops
                    .lock()
                    .unwrap()
                    .iter()
                    .filter_map(|o| o.error.as_ref().map(|e| format!("{}: {}", o.id, e.message)))
                    .rev()
                    .take(5)
                    .collect();
                bail!(
                    "{}: no statement acknowledged within {timeout:?}; last errors: {errors:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the client after its statement in flight and returns what it saw.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let outcome = self.thread.take().expect("joined once").join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{}: the workload could not start: {e:#}", self.name),
            Err(_) => panic!("{}: the workload thread panicked", self.name),
        }
        LoadReport {
            ops: std::mem::take(&mut self.ops.lock().unwrap()),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The first acknowledgement of a statement sent at or after `sent_after`, measured from `from`.
fn first_ack_after(ops: &[Op], from: Instant, sent_after: Instant) -> Option<Duration> {
    ops.iter()
        .find(|o| o.sent >= sent_after && o.error.is_none())
        .map(|o| o.done - from)
}

/// What a stopped [`Load`]'s client saw.
#[derive(Debug, Clone)]
pub struct LoadReport {
    ops: Vec<Op>,
}

/// A fault's phase of a run: from its mark to the next one (or the end of the run).
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// From the fault to the acknowledgement of the first statement sent after it took effect.
    pub first_ack: Option<Duration>,
    /// Errors seen in the phase, by kind.
    pub errors: BTreeMap<String, u64>,
    /// The errors' messages, first ones first (at most 10).
    pub messages: Vec<String>,
    /// The slowest statement that ended in the phase.
    pub slowest: Duration,
    /// Statements acknowledged in the phase.
    pub acked: usize,
}

impl Phase {
    /// Two clients' phases as one: the later first acknowledgement (when both were served
    /// again), errors and acknowledgements added up, the slower statement.
    pub fn merge(&self, other: &Phase) -> Phase {
        let mut errors = self.errors.clone();
        for (k, n) in &other.errors {
            *errors.entry(k.clone()).or_default() += n;
        }
        Phase {
            first_ack: self.first_ack.zip(other.first_ack).map(|(a, b)| a.max(b)),
            errors,
            messages: self
                .messages
                .iter()
                .chain(&other.messages)
                .cloned()
                .collect(),
            slowest: self.slowest.max(other.slowest),
            acked: self.acked + other.acked,
        }
    }

    /// Errors in all.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl LoadReport {
    /// Ids of the acknowledged statements.
    pub fn acked(&self) -> Vec<u64> {
        self.ops
            .iter()
            .filter(|o| o.error.is_none())
            .map(|o| o.id)
            .collect()
    }

    pub fn statements(&self) -> usize {
        self.ops.len()
    }

    /// Errors over the whole run, by kind.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        let mut by_kind = BTreeMap::new();
        for e in self.ops.iter().filter_map(|o| o.error.as_ref()) {
            *by_kind.entry(e.kind.clone()).or_default() += 1;
        }
        by_kind
    }

    /// The phase of fault `name` on `clock`.
    pub fn phase(&self, clock: &FaultClock, name: &str) -> Phase {
        let (start, effective, end) = clock
            .phase(name)
            .unwrap_or_else(|| panic!("fault {name} was not marked"));
        let ended_in = |o: &&Op| o.done >= start && end.is_none_or(|e| o.done < e);
        let mut p = Phase {
            first_ack: first_ack_after(&self.ops, start, effective),
            ..Phase::default()
        };
        for o in self.ops.iter().filter(ended_in) {
            p.slowest = p.slowest.max(o.done - o.sent);
            match &o.error {
                None => p.acked += 1,
                Some(e) => {
                    *p.errors.entry(e.kind.clone()).or_default() += 1;
                    if p.messages.len() < 10 {
                        p.messages.push(format!("{}: {}", o.id, e.message));
                    }
                }
            }
        }
        p
    }

    /// Acknowledged ids missing from `present`.
    pub fn lost(&self, present: &BTreeSet<u64>) -> Vec<u64> {
        self.acked()
            .into_iter()
            .filter(|id| !present.contains(id))
            .collect()
    }

    /// Acknowledged ids missing from `present`, with when each was sent and acknowledged
    /// relative to fault `name`.
    pub fn lost_around(
        &self,
        present: &BTreeSet<u64>,
        clock: &FaultClock,
        name: &str,
    ) -> Vec<Lost> {
        let (at, effective, _) = clock
            .phase(name)
            .unwrap_or_else(|| panic!("fault {name} was not marked"));
        self.ops
            .iter()
            .filter(|o| o.error.is_none() && !present.contains(&o.id))
            .map(|o| Lost {
                id: o.id,
                sent_before: o.sent < effective,
                acked_ms_before: if o.done <= at {
                    ms(at - o.done)
                } else {
                    -ms(o.done - at)
                },
            })
            .collect()
    }
}

/// An acknowledged write missing at the end. Asynchronous replication can lose writes that the
/// dying primary committed and had not sent yet: sent before the fault took effect,
/// acknowledged just before it (or just after: the OK was on its way). A write sent after that
/// never reached the old primary and must not be missing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lost {
    pub id: u64,
    /// Sent before the fault took effect.
    pub sent_before: bool,
    /// How long before the fault's mark its acknowledgement came (negative: after).
    pub acked_ms_before: f64,
}

/// One fault's result, printed as `FAULT-RESULT {json}`.
#[derive(Debug, Clone)]
pub struct FaultResult(Map<String, Value>);

impl FaultResult {
    /// The common fields: `fault`, `semi_sync`, `first_write_ms` (from the fault to the
    /// acknowledgement of the first write sent after it), `errors` (client-visible, by kind),
    /// `acked` (writes acknowledged in the whole run), `lost` (of those, missing on the
    /// primary at the end), `slowest_write_ms` (in the fault's phase).
    pub fn new(fault: &str, semi_sync: bool, phase: &Phase, acked: usize, lost: usize) -> Self {
        let mut m = Map::new();
        m.insert("fault".into(), fault.into());
        m.insert("semi_sync".into(), semi_sync.into());
        m.insert("first_write_ms".into(), json!(phase.first_ack.map(ms)));
        m.insert("errors".into(), json!(phase.errors));
        m.insert("acked".into(), acked.into());
        m.insert("lost".into(), lost.into());
        m.insert("slowest_write_ms".into(), json!(ms(phase.slowest)));
        FaultResult(m)
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn print(&self) {
        println!("FAULT-RESULT {}", Value::Object(self.0.clone()));
    }
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Polls `done` every 20 ms until it holds; returns how long that took.
pub fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if done() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("{what}: not within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ids in `app.{table}` (column `id`) on `server`, read directly (not through a proxy).
pub fn ids_on(server: &Server, table: &str) -> Result<BTreeSet<u64>> {
    let out = server.sql(&format!("SELECT id FROM app.{table}"))?;
    out.lines()
        .map(|l| l.trim().parse::<u64>().context("an id"))
        .collect()
}

/// Creates `app.{table}` (`id BIGINT PRIMARY KEY`) on the primary, waits until every replica
/// has it, then half a second more so that the proxy's monitor sees a healthy, replicating
/// cluster before a fault.
pub fn create_table(sandbox: &Sandbox, table: &str) -> Result<()> {
    sandbox
        .primary()
        .sql(&format!("CREATE TABLE app.{table} (id BIGINT PRIMARY KEY)"))?;
    for i in 1..=sandbox.replicas().len() {
        sandbox.wait_caught_up(i, Duration::from_secs(20))?;
    }
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// CPU time (user + system) a process used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line (11 and 12 here), in USER_HZ (100/s).
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The machine's CPU time so far as (busy, total) in USER_HZ ticks, from `/proc/stat` (busy:
/// everything but idle and iowait).
pub fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// The servers of the sandbox that are up and writable (`read_only = 0`).
pub fn writable(sandbox: &Sandbox) -> Vec<&Server> {
    sandbox
        .servers()
        .iter()
        .filter(|s| s.is_alive() && s.scalar("SELECT @@read_only").ok().as_deref() == Some("0"))
        .collect()
}

/// The one writable server; fails if there are none or several for 10 s (a server slow to
/// answer on a loaded machine counts as not writable until it answers).
pub fn the_primary(sandbox: &Sandbox) -> Result<&Server> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match writable(sandbox)[..] {
            [one] => return Ok(one),
            ref v if Instant::now() > deadline => bail!(
                "expected one writable server, found {:?}",
                v.iter().map(|s| s.name()).collect::<Vec<_>>()
            ),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// kill -9 of `server` as fault `name`: marked just before the signal (the pid looked up
/// first), in effect once the process is gone.
pub fn kill_marked(clock: &FaultClock, name: &str, server: &Server) -> Result<Instant> {
    let at = signal_marked(clock, name, server, Signal::SIGKILL)?;
    server.kill()?;
    clock.took_effect(name);
    Ok(at)
}

/// SIGSTOP of `server` as fault `name`: marked just before the signal, in effect once every
/// thread of the process is stopped.
pub fn stop_marked(clock: &FaultClock, name: &str, server: &Server) -> Result<Instant> {
    let pid = server
        .pid()
        .with_context(|| format!("{} is not running", server.name()))?;
    let at = clock.mark(name);
    lagless_sandbox::process::signal(pid, Signal::SIGSTOP)?;
    let stopped = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|tasks| {
                tasks.flatten().all(|t| {
                    let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                    // The state follows the command name, which is in parentheses.
                    stat.rfind(')')
                        .and_then(|i| stat[i + 1..].split_whitespace().next())
                        .is_some_and(|state| state == "T" || state == "t")
                })
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stopped() {
        if Instant::now() > deadline {
            bail!("{} (pid {pid}) did not stop within 5 s", server.name());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    clock.took_effect(name);
    Ok(at)
}

fn signal_marked(clock: &FaultClock, name: &str, server: &Server, sig: Signal) -> Result<Instant> {
    let pid = server
        .pid()
        .with_context(|| format!("{} is not running", server.name()))?;
    let at = clock.mark(name);
    lagless_sandbox::process::signal(pid, sig)?;
    Ok(at)
}

/// `server` is read-only.
pub fn is_fenced(server: &Server) -> bool {
    server.scalar("SELECT @@read_only").ok().as_deref() == Some("1")
}

/// `server` replicates from `primary` (its IO and SQL threads run).
pub fn replicates_from(server: &Server, primary: &Server) -> bool {
    matches!(server.slave_status(), Ok(Some(s)) if s.master_port == primary.port() && s.running())
}

/// How long a SIGSTOP of the primary is held: `LAGLESS_FAULT_SIGSTOP_MS`, else `default`.
pub fn sigstop_hold(default: Duration) -> Duration {
    std::env::var("LAGLESS_FAULT_SIGSTOP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(default, Duration::from_millis)
}

/// Failovers the proxy logged so far (`primary failed: failing over`).
pub fn failovers_logged(proxy_log: &str) -> usize {
    proxy_log.matches("primary failed: failing over").count()
}
