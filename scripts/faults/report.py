#!/usr/bin/env python3
"""Helpers for scripts/faults.sh (standard library only).

  report.py meta RUNS                      print the run's header as JSON (date, commit,
                                           machine, SIGSTOP hold)
  report.py report META OUT_JSON OUT_MD LOG...
                                           collect the FAULT-RESULT lines of the test logs
                                           (run-N.log), write the JSON and the Markdown table,
                                           print the Markdown

A FAULT-RESULT line (crates/e2e/src/faults.rs) holds at least: fault, semi_sync,
first_write_ms (fault -> acknowledgement of the first write sent after it), errors
(client-visible, by kind), acked, lost; and per fault some extra fields shown as notes.
"""

import json
import os
import re
import statistics
import subprocess
import sys

ORDER = [
    "kill9",
    "sigstop",
    "kill_replica",
    "kill_both_replicas",
    "restart_old_primary",
    "switchover",
    "two_proxies",
    "cpu_busy_primary",
]

TITLES = {
    "kill9": "kill -9 of the primary",
    "sigstop": "SIGSTOP of the primary, then SIGCONT",
    "kill_replica": "kill -9 of a replica (writes + reads)",
    "kill_both_replicas": "kill -9 of both replicas (writes + reads)",
    "restart_old_primary": "restart of the old primary after a kill -9 failover",
    "switchover": "switchover under write load",
    "two_proxies": "kill -9 of the primary, two proxies",
    "cpu_busy_primary": "primary at 100% CPU (must not fail over)",
}


def sh(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def cmd_meta(runs):
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    meta = {
        "date": sh("date", "-u", "+%Y-%m-%dT%H:%M:%SZ"),
        "commit": sh("git", "rev-parse", "--short", "HEAD"),
        "dirty": bool(sh("git", "status", "--porcelain", "--untracked-files=no")),
        "runs": int(runs),
        "sigstop_ms": int(os.environ.get("LAGLESS_FAULT_SIGSTOP_MS", "0") or 0),
        "cpus": os.cpu_count(),
        "loadavg_start": [float(x) for x in load],
        "mariadb": sh("mariadbd", "--version") or sh("/usr/sbin/mariadbd", "--version"),
        "profile": "release",
    }
    print(json.dumps(meta, indent=2))


def parse_log(path):
    """The FAULT-RESULT objects and the failed tests of one run's output."""
    run = int(re.search(r"run-(\d+)\.log$", path).group(1))
    results, failed = [], []
    with open(path, errors="replace") as f:
        text = f.read()
    for m in re.finditer(r"FAULT-RESULT (\{.*\})", text):
        r = json.loads(m.group(1))
        r["run"] = run
        results.append(r)
    # The harness lists failed tests after a "failures:" line, indented by 4 spaces.
    for block in re.finditer(r"^failures:\n((?:    \S+\n)+)", text, re.M):
        failed += [l.strip() for l in block.group(1).splitlines()]
    return run, results, sorted(set(failed))


def fmt_ms(v):
    return "–" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return fmt_ms(values[0])
    return " / ".join(fmt_ms(v) for v in (min(values), statistics.median(values), max(values)))


def notes(fault, rows):
    """Per-fault extra fields, summarised over the runs."""
    n = []

    def med(key):
        vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        return statistics.median(vals) if vals else None

    def states(key):
        seen = {}
        for r in rows:
            if key in r:
                seen[r[key]] = seen.get(r[key], 0) + 1
        return ", ".join(f"{k} ×{v}" for k, v in sorted(seen.items()))

    slow = med("slowest_write_ms")
    if fault in ("kill9", "two_proxies"):
        n.append(f"slowest write {fmt_ms(slow)} ms")
    if fault == "sigstop":
        n.append(f"held {fmt_ms(med('held_ms'))} ms")
        n.append(f"old primary fenced {fmt_ms(med('fenced_ms_after_sigcont'))} ms after SIGCONT")
        n.append(f"then {states('old_primary')}")
    elif fault == "restart_old_primary":
        n.append(f"server up {fmt_ms(med('server_up_ms'))} ms, fenced at {fmt_ms(med('fenced_ms'))} ms")
        n.append(f"then {states('old_primary')} at {fmt_ms(med('settled_ms'))} ms")
    elif fault in ("kill_replica", "kill_both_replicas"):
        read_errors = sum(sum(r.get("read_errors", {}).values()) for r in rows)
        reads = sum(r.get("reads", 0) for r in rows)
        n.append(f"{read_errors} read errors in {reads:,} reads")
        n.append(f"slowest read {fmt_ms(med('slowest_read_ms'))} ms")
    elif fault == "switchover":
        n.append(f"slowest write {fmt_ms(slow)} ms")
        n.append(f"switchover command {fmt_ms(med('command_ms'))} ms")
    elif fault == "two_proxies":
        per = [r.get("first_write_ms_per_proxy") for r in rows if r.get("first_write_ms_per_proxy")]
        if per:
            n.append("first write through each proxy: " + "; ".join(
                "/".join(fmt_ms(v) for v in p) for p in per) + " ms")
    elif fault == "cpu_busy_primary":
        n.append(f"failovers: {sum(r.get('failovers', 0) for r in rows)}")
        n.append(f"primary CPU {fmt_ms(med('primary_cpu_pct'))}% of a core, "
                 f"machine {fmt_ms(med('machine_cpu_busy_pct'))}% busy")
        n.append(f"slowest write {fmt_ms(slow)} ms")
    if fault in ("kill9", "two_proxies", "sigstop"):
        lost_ms = [v for r in rows for v in r.get("lost_acked_ms_before_kill", r.get("lost_acked_ms_before_stop", []))]
        if lost_ms:
            n.append("lost writes were acknowledged " + ", ".join(fmt_ms(v) for v in lost_ms)
                     + " ms before the fault")
    return "; ".join(x for x in n if x)


def cmd_report(meta_path, out_json, out_md, *logs):
    with open(meta_path) as f:
        meta = json.load(f)
    if "loadavg_end" not in meta:
        with open("/proc/loadavg") as f:
            meta["loadavg_end"] = [float(x) for x in f.read().split()[:3]]
    results, failures = [], {}
    for path in logs:
        run, res, failed = parse_log(path)
        results += res
        if failed:
            failures[run] = failed
    groups = {}
    for r in results:
        groups.setdefault((r["fault"], bool(r.get("semi_sync"))), []).append(r)
    keys = sorted(groups, key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else len(ORDER), k[0], k[1]))
    summary = []
    for fault, semi in keys:
        rows = groups[(fault, semi)]
        errors = {}
        for r in rows:
            for kind, count in r.get("errors", {}).items():
                errors[kind] = errors.get(kind, 0) + count
        first = [r.get("first_write_ms") for r in rows]
        summary.append({
            "fault": fault,
            "semi_sync": semi,
            "runs": len(rows),
            "first_write_ms": {
                "min": min((v for v in first if v is not None), default=None),
                "median": statistics.median([v for v in first if v is not None]) if any(v is not None for v in first) else None,
                "max": max((v for v in first if v is not None), default=None),
                "missing": sum(v is None for v in first),
            },
            "errors": errors,
            "acked": sum(r.get("acked", 0) for r in rows),
            "lost": sum(r.get("lost", 0) for r in rows),
            "notes": notes(fault, rows),
        })
    report = {"meta": meta, "summary": summary, "results": results, "failed_tests": failures}
    with open(out_json, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")

    md = []
    md.append(f"# Fault injection, {meta['date']}")
    md.append("")
    md.append(
        f"`RUNS={meta['runs']} scripts/faults.sh` at commit {meta['commit']}"
        + (" (with uncommitted changes)" if meta.get("dirty") else "")
        + f", release build, {meta['cpus']} CPUs, load average {meta['loadavg_start'][0]} at the start and "
        f"{meta['loadavg_end'][0]} at the end; SIGSTOP held {meta['sigstop_ms']} ms. Each fault test has its "
        "own sandbox (MariaDB primary + 2 replicas) and proxy (failover on, monitor every 100 ms) "
        "and a client inserting in autocommit through the proxy throughout; at the end the "
        "acknowledged inserts are compared with what the primary holds."
    )
    md.append("")
    md.append("| fault | semi-sync | runs | first acknowledged write after the fault, ms (min / median / max) "
              "| client-visible errors by kind (all runs) | acknowledged writes lost | notes (medians) |")
    md.append("|---|---|---:|---:|---|---:|---|")
    for s in summary:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(s["errors"].items())) or "none"
        md.append(
            f"| {TITLES.get(s['fault'], s['fault'])} | {'yes' if s['semi_sync'] else 'no'} | {s['runs']} "
            f"| {spread([r.get('first_write_ms') for r in groups[(s['fault'], s['semi_sync'])]])} "
            f"| {errors} | {s['lost']} of {s['acked']:,} | {s['notes']} |"
        )
    md.append("")
    md.append(
        "First acknowledged write: from the fault to the acknowledgement of the first insert "
        "sent after the fault took effect (process gone, or all its threads stopped; for faults "
        "that need no failover, that is about one insert's latency). Errors 9002 (2013 before "
        "commit 24228be) are the insert in flight when the primary failed (`the statement's "
        "outcome is unknown`). With asynchronous replication a write acknowledged just before "
        "the fault may not have reached any replica and can be lost; with semi-sync none may be."
    )
    if failures:
        md.append("")
        md.append("Failed tests: " + "; ".join(
            f"run {run}: {', '.join(names)}" for run, names in sorted(failures.items())))
    text = "\n".join(md) + "\n"
    with open(out_md, "w") as f:
        f.write(text)
    print(text, end="")


def main(argv):
    if len(argv) >= 2 and argv[1] == "meta":
        cmd_meta(argv[2] if len(argv) > 2 else "1")
    elif len(argv) >= 5 and argv[1] == "report":
        cmd_report(*argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
