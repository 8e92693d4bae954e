//! Counting one variant's read-backs, and summarising them.

use std::time::Duration;

use serde::Serialize;

/// What one read-back found.
#[derive(Debug, Clone, Copy)]
pub struct ReadBack {
    /// The value read; `None` when the row was not there at all (also stale).
    pub value: Option<i64>,
    pub server_id: u64,
    pub latency: Duration,
    /// When the read completed, in microseconds since the Unix epoch (to match server logs).
    pub at_unix_us: i64,
}

/// Stale reads kept as examples per variant.
pub const STALE_EXAMPLES: usize = 5;

/// One stale read, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StaleRead {
    /// The value the session wrote last (what a fresh read returns).
    pub written: i64,
    /// What the read returned; null when the row was missing.
    pub read: Option<i64>,
    /// `@@server_id` of the server that answered (0: unknown, the row was missing).
    pub server_id: u64,
    pub latency_ms: f64,
    /// How long the version read had been overwritten when the read completed.
    pub stale_for_ms: f64,
    /// When the read completed, milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
}

/// Raw counts of one variant, merged over the writers.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub pairs: u64,
    pub stale: u64,
    /// Stale reads the primary answered: the primary always has the last committed value,
    /// so these mean the write was lost or overwritten, not replication lag.
    pub stale_on_primary: u64,
    /// The first [`STALE_EXAMPLES`] stale reads.
    pub stale_examples: Vec<StaleRead>,
    pub missing_rows: u64,
    pub primary_reads: u64,
    pub replica_reads: u64,
    /// Failed statements (the pair is not counted).
    pub errors: u64,
    /// Variant B: `SELECT @lagless_token` gave NULL or '' (the read then ran without a token).
    pub tokens_missing: u64,
    /// The longest time, when a stale read completed, since the version it returned had been
    /// overwritten (see `Writer::superseded_at`).
    pub max_stale_us: i64,
    pub latencies_us: Vec<u64>,
    pub first_error: Option<String>,
    /// Later reads only: the shortest time seen from the session's write being acknowledged
    /// to the read being sent (see [`gap_wait`]).
    pub min_gap_us: Option<u64>,
}

impl Tally {
    /// `stale_for_us`: how long the version read had been overwritten (used when stale).
    pub fn record(&mut self, written: i64, r: ReadBack, primary_id: u64, stale_for_us: i64) {
        self.pairs += 1;
        if r.server_id == primary_id {
            self.primary_reads += 1;
        } else {
            self.replica_reads += 1;
        }
        self.latencies_us
            .push(u64::try_from(r.latency.as_micros()).unwrap_or(u64::MAX));
        match r.value {
            None => self.missing_rows += 1,
            Some(v) if v < written => {
                self.max_stale_us = self.max_stale_us.max(stale_for_us);
            }
            Some(_) => return,
        }
        self.stale += 1;
        if r.server_id == primary_id {
            self.stale_on_primary += 1;
        }
        if self.stale_examples.len() < STALE_EXAMPLES {
            self.stale_examples.push(StaleRead {
                written,
                read: r.value,
                server_id: r.server_id,
                latency_ms: r.latency.as_secs_f64() * 1000.0,
                stale_for_ms: stale_for_us as f64 / 1000.0,
                at_unix_ms: r.at_unix_us / 1000,
            });
        }
    }

    /// Notes the gap before one later read.
    pub fn gap(&mut self, gap: Duration) {
        let us = u64::try_from(gap.as_micros()).unwrap_or(u64::MAX);
        self.min_gap_us = Some(self.min_gap_us.map_or(us, |m| m.min(us)));
    }

    pub fn error(&mut self, e: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{e:#}"));
        }
    }

    pub fn merge(&mut self, o: Tally) {
        self.pairs += o.pairs;
        self.stale += o.stale;
        self.stale_on_primary += o.stale_on_primary;
        let room = STALE_EXAMPLES.saturating_sub(self.stale_examples.len());
        self.stale_examples
            .extend(o.stale_examples.into_iter().take(room));
        self.missing_rows += o.missing_rows;
        self.primary_reads += o.primary_reads;
        self.replica_reads += o.replica_reads;
        self.errors += o.errors;
        self.tokens_missing += o.tokens_missing;
        self.max_stale_us = self.max_stale_us.max(o.max_stale_us);
        self.latencies_us.extend(o.latencies_us);
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.min_gap_us = match (self.min_gap_us, o.min_gap_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// How long to sleep before a read that must start more than `gap` after a write
/// acknowledged `since_ack` ago: up to `gap` plus 1 ms (timers have millisecond resolution
/// and sleep at least as long as asked), nothing when that much has passed already.
pub fn gap_wait(since_ack: Duration, gap: Duration) -> Duration {
    (gap + Duration::from_millis(1)).saturating_sub(since_ack)
}

/// Read latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

impl Latency {
    /// Nearest-rank percentiles; `None` without samples.
    pub fn of(samples: &mut [u64]) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = (p * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1] as f64 / 1000.0
        };
        Some(Latency {
            p50: at(0.50),
            p99: at(0.99),
        })
    }

    /// Each percentile minus `base`'s (may be negative). A difference of two percentiles of
    /// two separate runs is an estimate of the latency added, not a per-read measure: the
    /// reads at p99 here and in `base` are different reads, under different load.
    pub fn minus(self, base: Latency) -> Latency {
        Latency {
            p50: self.p50 - base.p50,
            p99: self.p99 - base.p99,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_and_percentiles() {
        let mut t = Tally::default();
        let read = |value, server_id, ms| ReadBack {
            value,
            server_id,
            latency: Duration::from_millis(ms),
            at_unix_us: 1_000_000 * ms as i64,
        };
        t.record(10, read(Some(10), 2, 1), 1, 0);
        t.record(11, read(Some(7), 3, 2), 1, 4);
        t.record(12, read(None, 2, 3), 1, 9);
        t.record(13, read(Some(14), 1, 4), 1, 0);
        assert_eq!((t.pairs, t.stale, t.missing_rows), (4, 2, 1));
        assert_eq!(t.stale_on_primary, 0);
        assert_eq!(t.stale_examples.len(), 2);
        assert_eq!(
            t.stale_examples[0],
            StaleRead {
                written: 11,
                read: Some(7),
                server_id: 3,
                latency_ms: 2.0,
                stale_for_ms: 0.004,
                at_unix_ms: 2000,
            }
        );
        assert_eq!(t.stale_examples[1].read, None);
        assert_eq!(
            (t.primary_reads, t.replica_reads, t.max_stale_us),
            (1, 3, 4)
        );
        let l = Latency::of(&mut t.latencies_us).unwrap();
        assert_eq!((l.p50, l.p99), (2.0, 4.0));
        assert!(Latency::of(&mut []).is_none());
        let d = l.minus(Latency { p50: 0.5, p99: 5.0 });
        assert_eq!((d.p50, d.p99), (1.5, -1.0));
    }

    #[test]
    fn stale_reads_on_the_primary_and_examples_are_bounded() {
        let mut a = Tally::default();
        let read = |value, server_id| ReadBack {
            value: Some(value),
            server_id,
            latency: Duration::from_millis(1),
            at_unix_us: 0,
        };
        for _ in 0..4 {
            a.record(10, read(9, 1), 1, 5);
        }
        a.record(10, read(10, 1), 1, 0);
        let mut b = Tally::default();
        for _ in 0..3 {
            b.record(10, read(8, 2), 1, 5);
        }
        a.merge(b);
        assert_eq!((a.pairs, a.stale, a.stale_on_primary), (8, 7, 4));
        assert_eq!(a.stale_examples.len(), STALE_EXAMPLES);
        assert_eq!(a.stale_examples[4].server_id, 2);
    }

    #[test]
    fn later_reads_start_after_the_gap() {
        let ms = Duration::from_millis;
        assert_eq!(gap_wait(ms(0), ms(10)), ms(11));
        assert_eq!(gap_wait(ms(4), ms(10)), ms(7));
        assert_eq!(gap_wait(ms(11), ms(10)), ms(0));
        assert_eq!(gap_wait(ms(500), ms(10)), ms(0));
        let mut a = Tally::default();
        assert_eq!(a.min_gap_us, None);
        a.gap(ms(12));
        a.gap(Duration::from_micros(11_200));
        let mut b = Tally::default();
        b.gap(ms(15));
        a.merge(b);
        assert_eq!(a.min_gap_us, Some(11_200));
        let mut c = Tally::default();
        c.merge(a);
        assert_eq!(c.min_gap_us, Some(11_200));
    }
}
