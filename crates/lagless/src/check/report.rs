//! The report: a Markdown table or one JSON document, and the verdict behind the exit status.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::mode::{Guarantee, Mode, Variant};
use super::stats::{Latency, StaleRead, Tally};
use super::workload::Outcome;

/// The target: with no injected lag, at least this share of the reads that do not
/// follow the session's own write within 10 ms are served by replicas.
pub const LATER_REPLICA_TARGET: f64 = 0.8;

/// `--json` prints this.
#[derive(Debug, Serialize)]
pub struct Report {
    pub proxy: String,
    pub sandbox: PathBuf,
    pub primary_server_id: u64,
    /// MASTER_DELAY injected on each replica (0: none).
    pub lag_seconds: u64,
    pub lagged_replicas: usize,
    pub writers: u32,
    pub readers: u32,
    pub pairs_per_writer: u64,
    pub duration_seconds: u64,
    /// `--later-reads`: the writer's own reads after each variant-A pair (0: none).
    pub later_reads_per_pair: u32,
    /// `--later-gap-ms`: each of those reads started more than this long after the write.
    pub later_gap_ms: u64,
    pub modes: Vec<ModeReport>,
    /// Stale reads where the mode promises fresh ones.
    pub violations: Vec<Violation>,
    /// Ctrl-C stopped the run early.
    pub interrupted: bool,
    /// Set when removing the injected lag failed.
    pub lag_error: Option<String>,
    /// No violation, no error, not interrupted, lag removed.
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct ModeReport {
    pub mode: Mode,
    pub guarantee: Guarantee,
    pub note: Option<String>,
    /// Why the mode could not be checked (or not completely).
    pub error: Option<String>,
    pub elapsed_seconds: f64,
    pub background_reads: u64,
    pub background_errors: u64,
    pub variants: Vec<VariantReport>,
    /// Background reads served by a replica (`@@server_id` not the primary's).
    pub background_replica_reads: u64,
    /// The writers' own reads more than `later_gap_ms` after their write (variant
    /// `later_same_connection`; its latency is the read's alone); null without `--later-reads`.
    pub later: Option<VariantReport>,
    /// Later reads only: the shortest gap seen from the write's acknowledgement to the read.
    pub later_min_gap_ms: Option<f64>,
    pub read_mix: ReadMix,
}

/// Which reads the replicas served, by how soon they followed the session's own write.
#[derive(Debug, Serialize, PartialEq)]
pub struct ReadMix {
    /// Variant A: the read sent right after the session's own write was acknowledged.
    pub right_after_write: Share,
    /// The writers' own reads sent more than `later_after_ms` after their last write; null
    /// without `--later-reads`.
    pub later: Option<Share>,
    pub later_after_ms: u64,
    /// The background readers: sessions that never write.
    pub no_write_sessions: Share,
    /// `later` reached [`LATER_REPLICA_TARGET`]; null when lag was injected (the target is
    /// for no injected lag) or without later reads.
    pub later_target_met: Option<bool>,
}

/// Reads, and how many of them a replica served.
#[derive(Debug, Serialize, PartialEq)]
pub struct Share {
    pub reads: u64,
    pub replica_reads: u64,
    /// Null without reads.
    pub replica_fraction: Option<f64>,
}

impl Share {
    pub fn new(reads: u64, replica_reads: u64) -> Share {
        Share {
            reads,
            replica_reads,
            replica_fraction: (reads > 0).then(|| replica_reads as f64 / reads as f64),
        }
    }
}

impl ReadMix {
    /// `later`: (reads, replica reads) when later reads were asked for.
    pub fn new(
        right_after_write: Share,
        later: Option<Share>,
        later_after_ms: u64,
        no_write_sessions: Share,
        lag_seconds: u64,
    ) -> ReadMix {
        let later_target_met = later
            .as_ref()
            .and_then(|l| l.replica_fraction)
            .filter(|_| lag_seconds == 0)
            .map(|f| f >= LATER_REPLICA_TARGET);
        ReadMix {
            right_after_write,
            later,
            later_after_ms,
            no_write_sessions,
            later_target_met,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VariantReport {
    pub variant: Variant,
    /// The mode promises fresh reads in this variant.
    pub promised: bool,
    pub pairs: u64,
    pub stale: u64,
    /// Stale reads answered by the primary (a lost or overwritten write, not lag).
    pub stale_on_primary: u64,
    /// The first few stale reads, with the server that answered and when.
    pub stale_examples: Vec<StaleRead>,
    /// Stale reads that did not find the row at all.
    pub missing_rows: u64,
    /// The longest time, at the end of a stale read, since the version it returned had been
    /// overwritten (how far behind the reader was, in time).
    pub max_stale_ms: f64,
    /// Reads served by a replica / reads; null without reads.
    pub replica_fraction: Option<f64>,
    pub replica_reads: u64,
    /// Reads served by the primary (fallbacks, or the mode's choice).
    pub primary_reads: u64,
    /// Of the read-back statement; in variant B, `SET @lagless_token` plus the read (for
    /// `direct`, which has no token, the read alone).
    pub latency_ms: Option<Latency>,
    /// What the proxy added: `latency_ms` minus the `direct` run's for the same variant, p50
    /// and p99 apart. A difference of percentiles of two runs is an estimate, not a per-read
    /// measure (the p99 reads of the two runs are different reads, under different load); in
    /// variant B it includes the `SET @lagless_token` round trip that `direct` does not make.
    /// Null for `direct` itself, when the run has no `direct`, or when either has no reads.
    pub added_ms: Option<Latency>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Variant B only: the writer's `SELECT @lagless_token` was NULL or empty.
    pub tokens_missing: u64,
    /// `ok`, `VIOLATION`, `stale (allowed)`, `fresh` or `no data`.
    pub verdict: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Violation {
    pub mode: Mode,
    pub variant: Variant,
    pub stale: u64,
    pub pairs: u64,
}

/// The run's parameters, as the report shows them.
pub struct Header {
    pub proxy: String,
    pub sandbox: PathBuf,
    pub primary_server_id: u64,
    pub lag_seconds: u64,
    pub lagged_replicas: usize,
    pub writers: u32,
    pub readers: u32,
    pub pairs_per_writer: u64,
    pub duration_seconds: u64,
    pub later_reads_per_pair: u32,
    pub later_gap_ms: u64,
}

impl Report {
    pub fn new(
        h: Header,
        outcomes: Vec<(Mode, Outcome)>,
        interrupted: bool,
        lag_error: Option<String>,
    ) -> Report {
        let mut violations = Vec::new();
        let mut modes: Vec<ModeReport> = outcomes
            .into_iter()
            .map(|(mode, out)| {
                let g = mode.guarantee();
                let mut report = |variant: Variant, t: Tally| {
                    let v = variant_report(variant, g.promises(variant), t);
                    if v.verdict == "VIOLATION" {
                        violations.push(Violation {
                            mode,
                            variant,
                            stale: v.stale,
                            pairs: v.pairs,
                        });
                    }
                    v
                };
                let variants: Vec<VariantReport> = Variant::ALL
                    .into_iter()
                    .zip(out.tallies)
                    .map(|(variant, t)| report(variant, t))
                    .collect();
                let later_min_gap_ms = out.later.min_gap_us.map(|us| us as f64 / 1000.0);
                let later = (h.later_reads_per_pair > 0)
                    .then(|| report(Variant::LaterSameConnection, out.later));
                let a = &variants[Variant::SameConnection.index()];
                let read_mix = ReadMix::new(
                    Share::new(a.pairs, a.replica_reads),
                    later.as_ref().map(|l| Share::new(l.pairs, l.replica_reads)),
                    h.later_gap_ms,
                    Share::new(out.background_reads, out.background_replica_reads),
                    h.lag_seconds,
                );
                ModeReport {
                    mode,
                    guarantee: g,
                    note: mode.note(h.lag_seconds),
                    error: out.error,
                    elapsed_seconds: out.elapsed.as_secs_f64(),
                    background_reads: out.background_reads,
                    background_errors: out.background_errors,
                    variants,
                    background_replica_reads: out.background_replica_reads,
                    later,
                    later_min_gap_ms,
                    read_mix,
                }
            })
            .collect();
        over_direct(&mut modes);
        let mut r = Report {
            proxy: h.proxy,
            sandbox: h.sandbox,
            primary_server_id: h.primary_server_id,
            lag_seconds: h.lag_seconds,
            lagged_replicas: h.lagged_replicas,
            writers: h.writers,
            readers: h.readers,
            pairs_per_writer: h.pairs_per_writer,
            duration_seconds: h.duration_seconds,
            later_reads_per_pair: h.later_reads_per_pair,
            later_gap_ms: h.later_gap_ms,
            modes,
            violations,
            interrupted,
            lag_error,
            ok: false,
        };
        r.ok = r.failures().is_empty();
        r
    }

    /// Why the run fails, one line each; empty when it passes. Errors fail it too: a read
    /// that errored is a read whose freshness was not checked.
    pub fn failures(&self) -> Vec<String> {
        let mut f: Vec<String> = self
            .violations
            .iter()
            .map(|v| {
                format!(
                    "{}: {} stale of {} reads in variant {}, which the mode promises fresh",
                    v.mode,
                    v.stale,
                    v.pairs,
                    v.variant.label(),
                )
            })
            .collect();
        for m in &self.modes {
            if let Some(e) = &m.error {
                f.push(format!("{}: not checked completely: {e}", m.mode));
            }
            let errors: u64 = m
                .variants
                .iter()
                .chain(&m.later)
                .map(|v| v.errors)
                .sum::<u64>()
                + m.background_errors;
            if errors > 0 {
                let first = m
                    .variants
                    .iter()
                    .chain(&m.later)
                    .find_map(|v| v.first_error.as_deref());
                f.push(format!(
                    "{}: {errors} failed statements{}",
                    m.mode,
                    first.map_or(String::new(), |e| format!(" (first: {e})"))
                ));
            }
        }
        if self.interrupted {
            f.push("interrupted".into());
        }
        if let Some(e) = &self.lag_error {
            f.push(e.clone());
        }
        f
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Stale-read check through {}: {} s of lag on {} replicas, {} writers, {} readers, \
             up to {} pairs per writer and variant or {} s per mode; primary server_id {}.\n",
            self.proxy,
            self.lag_seconds,
            self.lagged_replicas,
            self.writers,
            self.readers,
            self.pairs_per_writer,
            self.duration_seconds,
            self.primary_server_id
        );
        // "p99 over direct" only when there is a baseline to be over.
        let direct = self.modes.iter().any(|m| m.mode.is_direct());
        let (over_head, over_align) = if direct {
            (" p99 over direct ms |", "--:|")
        } else {
            ("", "")
        };
        let _ = writeln!(
            s,
            "| mode | promise | variant | pairs | stale | max stale ms | replica reads | \
             primary reads | p50 ms | p99 ms |{over_head} errors | verdict |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|--:|--:|--:|--:|--:|--:|--:|{over_align}--:|---|"
        );
        let mut notes = Vec::new();
        if direct {
            notes.push(
                "direct: the same workload straight on the primary, without the proxy (no \
                 token in variant B); \"p99 over direct\" is a variant's p99 minus direct's \
                 for the same variant, an estimate of what the proxy added (a difference of \
                 percentiles, not a per-read measure)"
                    .to_string(),
            );
        }
        for m in &self.modes {
            if let Some(n) = &m.note {
                notes.push(format!("{}: {n}", m.mode));
            }
            if let Some(e) = &m.error {
                notes.push(format!("{}: ERROR {e}", m.mode));
            }
            if let Some(n) = m.read_mix.note() {
                notes.push(format!("{}: {n}", m.mode));
            }
            for v in m.variants.iter().chain(&m.later) {
                let lat = |f: fn(&Latency) -> f64| {
                    v.latency_ms
                        .as_ref()
                        .map_or("-".to_string(), |l| format!("{:.2}", f(l)))
                };
                let over = if !direct {
                    String::new()
                } else {
                    let p99 = v
                        .added_ms
                        .map_or("-".to_string(), |a| format!("{:+.2}", a.p99));
                    format!(" {p99} |")
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |{over} {} | {} |",
                    m.mode,
                    m.guarantee.label(),
                    v.variant.label(),
                    v.pairs,
                    v.stale,
                    v.max_stale_ms,
                    v.replica_fraction
                        .map_or("-".into(), |f| format!("{:.0}%", f * 100.0)),
                    v.primary_reads,
                    lat(|l| l.p50),
                    lat(|l| l.p99),
                    v.errors,
                    v.verdict
                );
                if v.stale_on_primary > 0 {
                    notes.push(format!(
                        "{} {}: {} of the {} stale reads were answered by the primary",
                        m.mode,
                        v.variant.label(),
                        v.stale_on_primary,
                        v.stale
                    ));
                }
                if v.tokens_missing > 0 {
                    notes.push(format!(
                        "{} {}: SELECT @lagless_token gave no token {} times (read without one)",
                        m.mode,
                        v.variant.label(),
                        v.tokens_missing
                    ));
                }
            }
        }
        if !notes.is_empty() {
            s += "\n";
            for n in notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        let failures = self.failures();
        if failures.is_empty() {
            s += "\nOK: no stale read where a mode promises read-your-writes.\n";
        } else {
            s += "\nFAIL:\n";
            for f in failures {
                let _ = writeln!(s, "- {f}");
            }
        }
        s
    }
}

impl ReadMix {
    /// One line for the table's notes; `None` when nothing was read.
    fn note(&self) -> Option<String> {
        let pct = |s: &Share| {
            s.replica_fraction.map_or("-".to_string(), |f| {
                format!("{:.1}% of {} reads", f * 100.0, s.reads)
            })
        };
        if self.right_after_write.reads == 0 && self.later.is_none() {
            return None;
        }
        let mut n = format!(
            "on replicas: right after the session's own write {}",
            pct(&self.right_after_write)
        );
        if let Some(l) = &self.later {
            let _ = write!(
                n,
                "; more than {} ms after it {}",
                self.later_after_ms,
                pct(l)
            );
            match self.later_target_met {
                Some(true) => n += " (target >= 80%: met)",
                Some(false) => n += " (target >= 80%: MISSED)",
                None => {}
            }
        }
        let _ = write!(
            n,
            "; sessions that never write {}",
            pct(&self.no_write_sessions)
        );
        Some(n)
    }
}

/// Sets `added_ms` of every variant (later reads included) of every mode but `direct`, from
/// the first `direct` run's same variant; leaves it null without a `direct` run.
fn over_direct(modes: &mut [ModeReport]) {
    let Some(direct) = modes.iter().find(|m| m.mode.is_direct()) else {
        return;
    };
    let base: Vec<(Variant, Latency)> = direct
        .variants
        .iter()
        .chain(&direct.later)
        .filter_map(|v| Some((v.variant, v.latency_ms?)))
        .collect();
    for m in modes.iter_mut().filter(|m| !m.mode.is_direct()) {
        for v in m.variants.iter_mut().chain(&mut m.later) {
            let b = base.iter().find(|(variant, _)| *variant == v.variant);
            v.added_ms = v.latency_ms.zip(b).map(|(l, (_, b))| l.minus(*b));
        }
    }
}

fn variant_report(variant: Variant, promised: bool, mut t: Tally) -> VariantReport {
    let verdict = match (t.pairs, t.stale, promised) {
        (0, _, _) => "no data",
        (_, 0, true) => "ok",
        (_, 0, false) => "fresh",
        (_, _, true) => "VIOLATION",
        (_, _, false) => "stale (allowed)",
    };
    VariantReport {
        variant,
        promised,
        pairs: t.pairs,
        stale: t.stale,
        stale_on_primary: t.stale_on_primary,
        stale_examples: t.stale_examples,
        missing_rows: t.missing_rows,
        max_stale_ms: t.max_stale_us as f64 / 1000.0,
        replica_fraction: (t.pairs > 0).then(|| t.replica_reads as f64 / t.pairs as f64),
        replica_reads: t.replica_reads,
        primary_reads: t.primary_reads,
        latency_ms: Latency::of(&mut t.latencies_us),
        added_ms: None,
        errors: t.errors,
        first_error: t.first_error,
        tokens_missing: t.tokens_missing,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_mix_and_the_80_percent_target() {
        let mix =
            |later, lag| ReadMix::new(Share::new(100, 78), later, 10, Share::new(50, 50), lag);
        let m = mix(Some(Share::new(200, 170)), 0);
        assert_eq!(m.right_after_write.replica_fraction, Some(0.78));
        assert_eq!(m.later.as_ref().unwrap().replica_fraction, Some(0.85));
        assert_eq!(m.later_target_met, Some(true));
        assert_eq!(
            mix(Some(Share::new(200, 160)), 0).later_target_met,
            Some(true)
        );
        assert_eq!(
            mix(Some(Share::new(200, 159)), 0).later_target_met,
            Some(false)
        );
        // The target is for runs without injected lag, and needs later reads.
        assert_eq!(mix(Some(Share::new(200, 0)), 1).later_target_met, None);
        assert_eq!(mix(None, 0).later_target_met, None);
        assert_eq!(mix(Some(Share::new(0, 0)), 0).later_target_met, None);
        let note = mix(Some(Share::new(200, 159)), 0).note().unwrap();
        assert!(note.contains("right after the session's own write 78.0% of 100 reads"));
        assert!(note.contains("more than 10 ms after it 79.5% of 200 reads"));
        assert!(note.contains("MISSED"), "{note}");
        assert!(!mix(None, 0).note().unwrap().contains("more than"));
    }

    #[test]
    fn added_latency_is_over_the_direct_runs_same_variant() {
        let h = |later_reads_per_pair| Header {
            proxy: "p".into(),
            sandbox: "s".into(),
            primary_server_id: 1,
            lag_seconds: 1,
            lagged_replicas: 2,
            writers: 1,
            readers: 0,
            pairs_per_writer: 1,
            duration_seconds: 1,
            later_reads_per_pair,
            later_gap_ms: 10,
        };
        // Every read fresh, on the primary, taking `ms` ms; variant i takes base + i ms.
        let outcome = |base_ms: u64, later: bool| {
            let mut out = Outcome::default();
            let read = |ms| super::super::stats::ReadBack {
                value: Some(5),
                server_id: 1,
                latency: std::time::Duration::from_millis(ms),
                at_unix_us: 0,
            };
            for (i, t) in out.tallies.iter_mut().enumerate() {
                t.record(5, read(base_ms + i as u64), 1, 0);
            }
            if later {
                out.later.record(5, read(base_ms + 10), 1, 0);
            }
            out
        };
        let mode = |s: &str| s.parse::<Mode>().unwrap();
        let (direct, gtid, primary) = (mode("direct"), mode("gtid"), mode("primary"));
        let r = Report::new(
            h(1),
            vec![
                (direct, outcome(1, true)),
                (gtid, outcome(4, true)),
                (primary, Outcome::default()),
            ],
            false,
            None,
        );
        assert!(r.ok, "{:?}", r.failures());
        // direct's own rows: nothing to be over.
        assert!(r.modes[0].variants.iter().all(|v| v.added_ms.is_none()));
        assert!(r.modes[0].later.as_ref().unwrap().added_ms.is_none());
        // gtid: (4 + i) - (1 + i) = 3 ms in each variant, later reads included.
        for v in r.modes[1].variants.iter().chain(&r.modes[1].later) {
            let a = v.added_ms.unwrap();
            assert_eq!((a.p50, a.p99), (3.0, 3.0), "{:?}", v.variant);
        }
        // No samples: null.
        assert!(r.modes[2].variants.iter().all(|v| v.added_ms.is_none()));
        let table = r.table();
        assert!(table.contains("| p99 over direct ms |"), "{table}");
        assert!(table.contains("| 2.00 | 2.00 | - | 0 | ok |"), "{table}");
        assert!(
            table.contains("| 5.00 | 5.00 | +3.00 | 0 | ok |"),
            "{table}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["modes"][1]["variants"][1]["added_ms"]["p99"], 3.0);
        assert!(json["modes"][0]["variants"][1]["added_ms"].is_null());

        // Without a direct run: null everywhere, and no column.
        let r = Report::new(h(0), vec![(gtid, outcome(4, false))], false, None);
        assert!(r.modes[0].variants.iter().all(|v| v.added_ms.is_none()));
        assert!(!r.table().contains("over direct"));
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert!(json["modes"][0]["variants"][0]["added_ms"].is_null());
    }

    #[test]
    fn later_reads_are_checked_and_counted() {
        let h = || Header {
            proxy: "p".into(),
            sandbox: "s".into(),
            primary_server_id: 1,
            lag_seconds: 0,
            lagged_replicas: 0,
            writers: 1,
            readers: 1,
            pairs_per_writer: 1,
            duration_seconds: 1,
            later_reads_per_pair: 2,
            later_gap_ms: 10,
        };
        let read = |value, server_id| super::super::stats::ReadBack {
            value: Some(value),
            server_id,
            latency: std::time::Duration::from_millis(1),
            at_unix_us: 0,
        };
        let mut out = Outcome::default();
        out.tallies[0].record(5, read(5, 2), 1, 0);
        out.later.record(5, read(5, 2), 1, 0);
        out.later.record(5, read(4, 3), 1, 7);
        out.background_reads = 4;
        out.background_replica_reads = 3;
        let gtid: Mode = "gtid".parse().unwrap();
        let r = Report::new(h(), vec![(gtid, out)], false, None);
        let m = &r.modes[0];
        let later = m.later.as_ref().unwrap();
        assert_eq!(
            (later.pairs, later.stale, later.verdict),
            (2, 1, "VIOLATION")
        );
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.violations[0].variant, Variant::LaterSameConnection);
        assert_eq!(later.stale_examples[0].server_id, 3);
        assert_eq!(later.stale_on_primary, 0);
        assert!(!r.ok);
        assert_eq!(
            m.read_mix.later.as_ref().unwrap().replica_fraction,
            Some(1.0)
        );
        assert_eq!(m.read_mix.no_write_sessions.replica_fraction, Some(0.75));
        assert!(r.table().contains("A later, same conn"));
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["modes"][0]["variants"].as_array().unwrap().len(), 3);
        assert_eq!(
            json["modes"][0]["later"]["variant"],
            "later_same_connection"
        );
        // Without --later-reads there is no later report.
        let mut h0 = h();
        h0.later_reads_per_pair = 0;
        let r = Report::new(h0, vec![(gtid, Outcome::default())], false, None);
        assert!(r.modes[0].later.is_none() && r.modes[0].read_mix.later.is_none());
    }
}
