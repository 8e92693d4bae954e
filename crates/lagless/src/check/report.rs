//! The report: a Markdown table or one JSON document, and the verdict behind the exit status.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::mode::{Guarantee, Mode, Variant};
use super::stats::{Latency, Tally};
use super::workload::Outcome;

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
}

#[derive(Debug, Serialize)]
pub struct VariantReport {
    pub variant: Variant,
    /// The mode promises fresh reads in this variant.
    pub promised: bool,
    pub pairs: u64,
    pub stale: u64,
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
    /// Of the read-back statement; in variant B, `SET @lagless_token` plus the read.
    pub latency_ms: Option<Latency>,
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
}

impl Report {
    pub fn new(
        h: Header,
        outcomes: Vec<(Mode, Outcome)>,
        interrupted: bool,
        lag_error: Option<String>,
    ) -> Report {
        let mut violations = Vec::new();
        let modes: Vec<ModeReport> = outcomes
            .into_iter()
            .map(|(mode, out)| {
                let g = mode.guarantee();
                let variants = Variant::ALL
                    .into_iter()
                    .zip(out.tallies)
                    .map(|(variant, t)| {
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
                    })
                    .collect();
                ModeReport {
                    mode,
                    guarantee: g,
                    note: mode.note(h.lag_seconds),
                    error: out.error,
                    elapsed_seconds: out.elapsed.as_secs_f64(),
                    background_reads: out.background_reads,
                    background_errors: out.background_errors,
                    variants,
                }
            })
            .collect();
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
            let errors: u64 =
                m.variants.iter().map(|v| v.errors).sum::<u64>() + m.background_errors;
            if errors > 0 {
                let first = m.variants.iter().find_map(|v| v.first_error.as_deref());
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
        s += "| mode | promise | variant | pairs | stale | max stale ms | replica reads | \
              primary reads | p50 ms | p99 ms | errors | verdict |\n";
        s += "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
        let mut notes = Vec::new();
        for m in &self.modes {
            if let Some(n) = &m.note {
                notes.push(format!("{}: {n}", m.mode));
            }
            if let Some(e) = &m.error {
                notes.push(format!("{}: ERROR {e}", m.mode));
            }
            for v in &m.variants {
                let lat = |f: fn(&Latency) -> f64| {
                    v.latency_ms
                        .as_ref()
                        .map_or("-".to_string(), |l| format!("{:.2}", f(l)))
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
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
        missing_rows: t.missing_rows,
        max_stale_ms: t.max_stale_us as f64 / 1000.0,
        replica_fraction: (t.pairs > 0).then(|| t.replica_reads as f64 / t.pairs as f64),
        replica_reads: t.replica_reads,
        primary_reads: t.primary_reads,
        latency_ms: Latency::of(&mut t.latencies_us),
        errors: t.errors,
        first_error: t.first_error,
        tokens_missing: t.tokens_missing,
        verdict,
    }
}
