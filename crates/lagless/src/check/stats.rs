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
}

/// Raw counts of one variant, merged over the writers.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub pairs: u64,
    pub stale: u64,
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
            None => {
                self.stale += 1;
                self.missing_rows += 1;
            }
            Some(v) if v < written => {
                self.stale += 1;
                self.max_stale_us = self.max_stale_us.max(stale_for_us);
            }
            Some(_) => {}
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
        };
        t.record(10, read(Some(10), 2, 1), 1, 0);
        t.record(11, read(Some(7), 3, 2), 1, 4);
        t.record(12, read(None, 2, 3), 1, 9);
        t.record(13, read(Some(14), 1, 4), 1, 0);
        assert_eq!((t.pairs, t.stale, t.missing_rows), (4, 2, 1));
        assert_eq!(
            (t.primary_reads, t.replica_reads, t.max_stale_us),
            (1, 3, 4)
        );
        let l = Latency::of(&mut t.latencies_us).unwrap();
        assert_eq!((l.p50, l.p99), (2.0, 4.0));
        assert!(Latency::of(&mut []).is_none());
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
