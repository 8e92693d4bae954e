//! One mode's run: writer sessions that write and read each write back in the three variants
//! (and, with `--later-reads`, read their row again once more than `--later-gap-ms` have passed
//! since their write), and background readers that never write. The `direct` mode runs the
//! same against the primary itself (see [`Plan::endpoint`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
use mysql_async::Conn;
use rand::Rng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::conn::{close, query_drop, query_first, quote, Endpoint};
use super::mode::{Mode, Variant};
use super::stats::{gap_wait, ReadBack, Tally};
use super::TABLE;

/// What every mode's run shares.
#[derive(Debug, Clone)]
pub struct Plan {
    pub proxy: Endpoint,
    /// The sandbox primary, for the `direct` baseline.
    pub primary: Endpoint,
    /// `@@server_id` of the sandbox primary: reads it served are fallbacks.
    pub primary_id: u64,
    pub writers: u32,
    pub readers: u32,
    pub pairs: u64,
    pub duration: Duration,
    /// Later reads after each variant-A pair (0: none), and the gap they keep from the write.
    pub later_reads: u32,
    pub later_gap: Duration,
}

impl Plan {
    /// Where `mode`'s sessions connect: the primary for `direct`, else the proxy.
    pub fn endpoint(&self, mode: Mode) -> &Endpoint {
        if mode.is_direct() {
            &self.primary
        } else {
            &self.proxy
        }
    }
}

/// What one mode's run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Why the mode could not be checked (fully or at all).
    pub error: Option<String>,
    /// Indexed like [`Variant::ALL`].
    pub tallies: [Tally; 3],
    /// The writers' own reads more than `later_gap` after their write.
    pub later: Tally,
    pub background_reads: u64,
    /// Background reads whose `@@server_id` was not the primary's.
    pub background_replica_reads: u64,
    pub background_errors: u64,
    pub elapsed: Duration,
}

pub async fn run_mode(plan: &Plan, mode: Mode, cancel: &CancellationToken) -> Outcome {
    let start = Instant::now();
    let mut out = Outcome::default();
    // One session first, so that a refused mode gives one clear error, not W+R of them.
    let ep = plan.endpoint(mode);
    match ep.session(mode).await {
        Ok(conn) => close(conn, ep.timeout).await,
        Err(e) => {
            out.error = Some(format!("{e:#}"));
            return out;
        }
    }
    let deadline = tokio::time::Instant::now() + plan.duration;
    let stop_readers = cancel.child_token();
    let mut readers = JoinSet::new();
    for _ in 0..plan.readers {
        let (ep, stop, n) = (ep.clone(), stop_readers.clone(), plan.writers);
        let primary_id = plan.primary_id;
        readers.spawn(async move { reader(ep, mode, n, primary_id, stop).await });
    }
    let mut writers = JoinSet::new();
    for id in 1..=plan.writers {
        let (plan, cancel) = (plan.clone(), cancel.clone());
        writers.spawn(async move { write_loop(plan, mode, id, deadline, cancel).await });
    }
    while let Some(joined) = writers.join_next().await {
        let (tallies, later, stopped) = match joined {
            Ok(r) => r,
            Err(e) => (
                Default::default(),
                Default::default(),
                Some(format!("a writer failed: {e}")),
            ),
        };
        for (total, t) in out.tallies.iter_mut().zip(tallies) {
            total.merge(t);
        }
        out.later.merge(later);
        if let Some(e) = stopped {
            out.error.get_or_insert(e);
        }
    }
    stop_readers.cancel();
    while let Some(joined) = readers.join_next().await {
        if let Ok(r) = joined {
            out.background_reads += r.reads;
            out.background_replica_reads += r.replica_reads;
            out.background_errors += r.errors;
        }
    }
    out.elapsed = start.elapsed();
    out
}

/// One writer: owns row `id`, runs `pairs` rounds of (A, later reads, B, C) or until the
/// deadline. Returns what it measured (variants, later reads), and why it stopped early if it
/// could not go on.
async fn write_loop(
    plan: Plan,
    mode: Mode,
    id: u32,
    deadline: tokio::time::Instant,
    cancel: CancellationToken,
) -> ([Tally; 3], Tally, Option<String>) {
    let mut w = match Writer::open(&plan, mode, id).await {
        Ok(w) => w,
        Err(e) => {
            let why = Some(format!("writer {id}: {e:#}"));
            return (Default::default(), Default::default(), why);
        }
    };
    let mut stopped = None;
    'rounds: for _ in 0..plan.pairs {
        // Each variant gets its own write, read back at once: a read never profits from the
        // time another variant's read spent waiting.
        for variant in Variant::ALL {
            if cancel.is_cancelled() || tokio::time::Instant::now() >= deadline {
                break 'rounds;
            }
            let result = tokio::select! {
                r = w.pair(variant) => r,
                _ = cancel.cancelled() => break 'rounds,
            };
            let result = match result {
                Ok(()) if variant == Variant::SameConnection && plan.later_reads > 0 => {
                    let later = tokio::select! {
                        r = w.later(plan.later_reads, plan.later_gap) => r,
                        _ = cancel.cancelled() => break 'rounds,
                    };
                    later.map_err(|e| (Variant::LaterSameConnection, e))
                }
                r => r.map_err(|e| (variant, e)),
            };
            if let Err((failed, e)) = result {
                match failed {
                    Variant::LaterSameConnection => w.later.error(&e),
                    v => w.tallies[v.index()].error(&e),
                }
                // The failed connection's state is unknown (maybe mid-result): start over.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Err(e) = w.reopen().await {
                    stopped = Some(format!("writer {id} cannot reconnect: {e:#}"));
                    break 'rounds;
                }
            }
        }
    }
    let (tallies, later) = w.close().await;
    (tallies, later, stopped)
}

/// A writer's three sessions, all in the mode under test.
struct Writer {
    ep: Endpoint,
    mode: Mode,
    id: u32,
    primary_id: u64,
    last: i64,
    /// Every value written this run, ascending (they are strictly increasing).
    history: Vec<i64>,
    /// Writes, and reads back in variant A.
    own: Conn,
    /// Another "process": takes the writer's token, then reads (variant B). For `direct`
    /// there is no token (the server knows none): it just reads.
    tokened: Conn,
    /// Another "process" without a token (variant C). Separate from `tokened`, whose
    /// session keeps the last token it was given.
    plain: Conn,
    tallies: [Tally; 3],
    /// When the last write on `own` was acknowledged.
    acked: Instant,
    later: Tally,
}

impl Writer {
    async fn open(plan: &Plan, mode: Mode, id: u32) -> Result<Writer> {
        let ep = plan.endpoint(mode).clone();
        Ok(Writer {
            own: ep.session(mode).await?,
            tokened: ep.session(mode).await?,
            plain: ep.session(mode).await?,
            ep,
            mode,
            id,
            primary_id: plan.primary_id,
            last: 0,
            history: Vec::new(),
            tallies: Default::default(),
            acked: Instant::now(),
            later: Tally::default(),
        })
    }

    async fn reopen(&mut self) -> Result<()> {
        let t = self.ep.timeout;
        for conn in [&mut self.own, &mut self.tokened, &mut self.plain] {
            let old = std::mem::replace(conn, self.ep.session(self.mode).await?);
            close(old, t).await;
        }
        Ok(())
    }

    async fn close(self) -> ([Tally; 3], Tally) {
        for conn in [self.own, self.tokened, self.plain] {
            close(conn, self.ep.timeout).await;
        }
        (self.tallies, self.later)
    }

    /// Values are wall-clock microseconds, kept strictly increasing: they grow across runs
    /// too (a replica still holding an older run's value cannot pass for fresh), and each
    /// value tells when it was written (see [`Writer::superseded_at`]).
    fn next_value(&mut self) -> i64 {
        let now = Self::now_us();
        self.last = now.max(self.last + 1);
        self.history.push(self.last);
        self.last
    }

    /// When the version `read` was overwritten: at the first write after it. Values are
    /// write times, so that write's value is its time; a version older than this run was
    /// overwritten by the run's first write.
    fn superseded_at(&self, read: i64) -> Option<i64> {
        let i = self.history.partition_point(|&v| v <= read);
        self.history.get(i).copied()
    }

    fn now_us() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64)
    }

    async fn pair(&mut self, variant: Variant) -> Result<()> {
        let t = self.ep.timeout;
        let value = self.next_value();
        // Only ever upward: a write whose statement failed or timed out here may still be
        // committed later (queued in the proxy); it must not overwrite a newer value, which
        // a read would then report as stale even on the primary.
        let update = format!(
            "UPDATE {TABLE} SET v = {value} WHERE id = {} AND v < {value}",
            self.id
        );
        query_drop(&mut self.own, &update, t).await?;
        self.acked = Instant::now();
        if self.own.affected_rows() != 1 {
            bail!(
                "`{update}` changed {} rows, not 1",
                self.own.affected_rows()
            );
        }
        let read = format!("SELECT v, @@server_id FROM {TABLE} WHERE id = {}", self.id);
        let r = match variant {
            Variant::SameConnection => read_back(&mut self.own, &read, t).await?,
            Variant::Token if self.mode.is_direct() => {
                read_back(&mut self.tokened, &read, t).await?
            }
            Variant::Token => {
                // Fetching the token is the writer's cost; the reader's is SET + SELECT.
                let token =
                    query_first::<(Option<String>,)>(&mut self.own, "SELECT @lagless_token", t)
                        .await?
                        .and_then(|(tok,)| tok)
                        .filter(|tok| !tok.is_empty());
                let start = Instant::now();
                match token {
                    Some(tok) => {
                        let set = format!("SET @lagless_token = {}", quote(&tok));
                        query_drop(&mut self.tokened, &set, t).await?;
                    }
                    // Still read, so the variant shows what a token-less reader gets.
                    None => self.tallies[Variant::Token.index()].tokens_missing += 1,
                }
                let mut r = read_back(&mut self.tokened, &read, t).await?;
                r.latency = start.elapsed();
                r
            }
            Variant::NewConnection => read_back(&mut self.plain, &read, t).await?,
            Variant::LaterSameConnection => unreachable!("later reads are Writer::later's"),
        };
        let stale_for = self.stale_for(r.value);
        self.tallies[variant.index()].record(value, r, self.primary_id, stale_for);
        Ok(())
    }

    /// How long the version read had been overwritten when the read completed.
    fn stale_for(&self, read: Option<i64>) -> i64 {
        read.and_then(|v| self.superseded_at(v))
            .map_or(0, |at| (Self::now_us() - at).max(0))
    }

    /// `n` reads of the row on the writer's own connection, each sent more than `gap` after
    /// the session's last write (the variant-A write just read back) was acknowledged.
    async fn later(&mut self, n: u32, gap: Duration) -> Result<()> {
        let t = self.ep.timeout;
        let read = format!("SELECT v, @@server_id FROM {TABLE} WHERE id = {}", self.id);
        for _ in 0..n {
            // Sleeps at least as long as asked; the loop only guards that promise.
            loop {
                let since = self.acked.elapsed();
                if since > gap {
                    self.later.gap(since);
                    break;
                }
                tokio::time::sleep(gap_wait(since, gap)).await;
            }
            let r = read_back(&mut self.own, &read, t).await?;
            let stale_for = self.stale_for(r.value);
            self.later.record(self.last, r, self.primary_id, stale_for);
        }
        Ok(())
    }
}

async fn read_back(conn: &mut Conn, sql: &str, t: Duration) -> Result<ReadBack> {
    let start = Instant::now();
    let row = query_first::<(Option<i64>, Option<u64>)>(conn, sql, t).await?;
    let latency = start.elapsed();
    let (value, server_id) = match row {
        Some((v, Some(id))) => (v, id),
        Some((_, None)) => return Err(anyhow!("`{sql}`: @@server_id is NULL")),
        // No row: the replica has not even the row's insert. Where it ran is unknown, but
        // it cannot be the primary, which has had the row since the set-up.
        None => (None, 0),
    };
    Ok(ReadBack {
        value,
        server_id,
        latency,
        at_unix_us: Writer::now_us(),
    })
}

/// What one background reader did.
#[derive(Debug, Default)]
struct Background {
    reads: u64,
    replica_reads: u64,
    errors: u64,
}

/// Random point reads until `stop`, noting which were served by a replica.
async fn reader(
    ep: Endpoint,
    mode: Mode,
    rows: u32,
    primary_id: u64,
    stop: CancellationToken,
) -> Background {
    let mut b = Background::default();
    let mut conn = None;
    while !stop.is_cancelled() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match tokio::select! {
                r = ep.session(mode) => r,
                _ = stop.cancelled() => break,
            } {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    b.errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let id = rand::thread_rng().gen_range(1..=rows);
        let sql = format!("SELECT v, @@server_id FROM {TABLE} WHERE id = {id}");
        let r = tokio::select! {
            r = query_first::<(i64, u64)>(c, &sql, ep.timeout) => r,
            _ = stop.cancelled() => break,
        };
        match r {
            Ok(row) => {
                b.reads += 1;
                // No row: not the primary, which has had every row since the set-up.
                if row.is_none_or(|(_, server)| server != primary_id) {
                    b.replica_reads += 1;
                }
            }
            Err(_) => {
                b.errors += 1;
                if let Some(c) = conn.take() {
                    close(c, ep.timeout).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    if let Some(c) = conn {
        close(c, ep.timeout).await;
    }
    b
}
