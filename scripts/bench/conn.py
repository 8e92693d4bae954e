#!/usr/bin/env python3
"""Connection benchmarks for scripts/bench.sh, with PyMySQL (run with .venv/bin/python).

  conn.py connect --port P --label T [--count 500] [--pid PID] --out FILE
      Sequential connections: each one timed with time.perf_counter around
      pymysql.connect (TCP connect, handshake, authentication) + `SELECT 1` + close.
      Prints/writes p50, p95, p99, mean (µs), failures, and with --pid the proxy's own CPU
      (utime+stime) per connection.

  conn.py idle --port P --count N --pid PID --status SANDBOX_STATUS_JSON [--hold 5] --out FILE
      Opens N authenticated client connections (no statement sent), keeps them all open,
      and reports the proxy's VmRSS/VmHWM, threads and open file descriptors before, with
      the N open, and after closing them; how many connected; the errors of those that did
      not (counted by message); how many still answered COM_PING after the hold; and each
      server's Threads_connected (through the sandbox admin account), since the proxy may
      open backend connections per client.

Common options: --host 127.0.0.1 --user app --password lagless --database sbtest.
Standard library + PyMySQL only.
"""

import argparse
import collections
import json
import os
import resource
import sys
import time

import pymysql

CONNECT_TIMEOUT_S = 10
# PyMySQL's connect_timeout covers only the TCP connect: without a read timeout a server that
# accepted the socket but never finishes the handshake would block the client forever.
READ_TIMEOUT_S = 10


def connect(a, **kw):
    # autocommit=None: PyMySQL sends nothing after authentication (its default, False, sends
    # SET AUTOCOMMIT = 0, which is not part of what is measured here).
    # ssl_disabled: otherwise PyMySQL builds an SSL context for every connection ("preferred"
    # TLS), loading the system's CA certificates: about 40 ms of client CPU each time, which
    # would hide everything measured here. Lagless has no TLS yet; all targets are plaintext.
    return pymysql.connect(host=a.host, port=a.port, user=a.user, password=a.password,
                           database=a.database, autocommit=None, ssl_disabled=True,
                           connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                           write_timeout=READ_TIMEOUT_S, **kw)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # fields 14 and 15: utime, stime


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key.lower() + "_kb"] = int(value.split()[0])
            elif key == "Threads":
                out["threads"] = int(value)
    try:
        out["open_fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        out["open_fds"] = None
    return out


def percentile(sorted_xs, p):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_xs:
        return None
    k = max(0, min(len(sorted_xs) - 1, int(-(-p * len(sorted_xs) // 100)) - 1))
    return sorted_xs[k]


def short(e):
    return f"{type(e).__name__}: {e}"[:160]


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, need))
    if want != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cmd_connect(a):
    errors = collections.Counter()
    for _ in range(5):  # untimed: first logins (RSA key exchange, caches)
        try:
            c = connect(a)
            with c.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
            c.close()
        except Exception as e:  # noqa: BLE001 (counted and reported)
            errors["warm-up: " + short(e)] += 1
    before = cpu_ticks(a.pid) if a.pid else None
    times, failed = [], 0
    start = time.perf_counter()
    for _ in range(a.count):
        t0 = time.perf_counter()
        try:
            c = connect(a)
            with c.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
            c.close()
        except Exception as e:  # noqa: BLE001
            failed += 1
            errors[short(e)] += 1
            continue
        times.append((time.perf_counter() - t0) * 1e6)
    wall = time.perf_counter() - start
    after = cpu_ticks(a.pid) if a.pid else None
    times.sort()
    r = {
        "kind": "connect",
        "label": a.label,
        "round": a.round,
        "port": a.port,
        "count": a.count,
        "ok": len(times),
        "failed": failed,
        "errors": dict(errors.most_common(5)),
        "wall_s": round(wall, 3),
        "p50_us": round(percentile(times, 50), 1) if times else None,
        "p95_us": round(percentile(times, 95), 1) if times else None,
        "p99_us": round(percentile(times, 99), 1) if times else None,
        "mean_us": round(sum(times) / len(times), 1) if times else None,
        "max_us": round(times[-1], 1) if times else None,
    }
    if a.pid:
        cpu_s = (after - before) / os.sysconf("SC_CLK_TCK")
        r["proxy_cpu_s"] = round(cpu_s, 3)
        r["proxy_cpu_us_per_connection"] = round(cpu_s * 1e6 / a.count, 1) if a.count else None
    return r


def threads_connected(status_path):
    """Threads_connected of every sandbox server, through its admin account (which MariaDB
    lets in even at max_connections, if it has SUPER/CONNECTION ADMIN)."""
    with open(status_path) as f:
        st = json.load(f)
    admin = st["users"]["admin"]
    out = {}
    for s in st["servers"]:
        try:
            c = pymysql.connect(host=s["host"], port=s["port"], user=admin["user"],
                                password=admin["password"], ssl_disabled=True,
                                connect_timeout=CONNECT_TIMEOUT_S,
                                read_timeout=READ_TIMEOUT_S)
            with c.cursor() as cur:
                cur.execute("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
                            "WHERE VARIABLE_NAME = 'THREADS_CONNECTED'")
                tc = int(cur.fetchone()[0])
                cur.execute("SELECT @@max_connections")
                mc = int(cur.fetchone()[0])
            c.close()
            out[s["name"]] = {"threads_connected": tc, "max_connections": mc}
        except Exception as e:  # noqa: BLE001
            out[s["name"]] = {"error": short(e)}
    return out


def cmd_idle(a):
    nofile = raise_nofile(a.count + 1024)
    r = {"kind": "idle", "label": a.label, "port": a.port, "count": a.count,
         "client_nofile": nofile}
    r["servers_before"] = threads_connected(a.status)
    r["proxy_before"] = proc_status(a.pid)
    conns, errors, failed = [], collections.Counter(), 0
    first_failure_at = None
    start = time.perf_counter()
    deadline = start + a.deadline
    attempted = consecutive = 0
    stopped = None
    for i in range(a.count):
        if time.perf_counter() > deadline:
            stopped = f"deadline of {a.deadline:.0f} s reached"
            break
        if consecutive >= a.max_consecutive_failures:
            stopped = f"{consecutive} failures in a row"
            break
        attempted += 1
        try:
            conns.append(connect(a))
            consecutive = 0
        except Exception as e:  # noqa: BLE001
            failed += 1
            consecutive += 1
            errors[short(e)] += 1
            if first_failure_at is None:
                first_failure_at = i + 1
        if (i + 1) % 1000 == 0:
            print(f"conn.py idle: {i + 1} attempted, {len(conns)} open, {failed} failed "
                  f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    r["open_s"] = round(time.perf_counter() - start, 3)
    r["attempted"] = attempted
    r["stopped_early"] = stopped
    r["connected"] = len(conns)
    r["failed"] = failed
    r["first_failure_at"] = first_failure_at
    r["errors"] = dict(errors.most_common(5))
    r["all_succeeded"] = len(conns) == a.count
    time.sleep(a.hold)
    r["proxy_open"] = proc_status(a.pid)
    r["servers_open"] = threads_connected(a.status)
    alive = 0
    ping_errors = collections.Counter()
    ping_deadline = time.perf_counter() + 120
    for c in conns:
        if time.perf_counter() > ping_deadline:
            ping_errors["not pinged: 120 s ping deadline reached"] += 1
            continue
        try:
            c.ping(reconnect=False)
            alive += 1
        except Exception as e:  # noqa: BLE001
            ping_errors[short(e)] += 1
    r["alive_after_hold"] = alive
    r["ping_errors"] = dict(ping_errors.most_common(5))
    for c in conns:
        try:
            c.close()
        except Exception:  # noqa: BLE001 (already gone)
            pass
    conns.clear()
    time.sleep(2)
    r["proxy_after_close"] = proc_status(a.pid)
    r["servers_after_close"] = threads_connected(a.status)
    before, opened = r["proxy_before"]["vmrss_kb"], r["proxy_open"]["vmrss_kb"]
    r["rss_growth_kb"] = opened - before
    r["rss_per_connection_bytes"] = (
        round((opened - before) * 1024 / r["connected"]) if r["connected"] else None)
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["connect", "idle"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="app")
    p.add_argument("--password", default="lagless")
    p.add_argument("--database", default="sbtest")
    p.add_argument("--label", default="")
    p.add_argument("--round", type=int, default=1)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--status", help="sandbox status --json output (idle)")
    p.add_argument("--hold", type=float, default=5.0, help="seconds idle with all open (idle)")
    p.add_argument("--deadline", type=float, default=300.0,
                   help="stop opening connections after this many seconds (idle)")
    p.add_argument("--max-consecutive-failures", type=int, default=20,
                   help="stop opening connections after this many failures in a row (idle)")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.mode == "idle" and not (a.pid and a.status):
        p.error("idle needs --pid and --status")
    r = cmd_connect(a) if a.mode == "connect" else cmd_idle(a)
    with open(a.out, "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")
    brief = {k: r.get(k) for k in ("label", "ok", "connected", "failed", "p50_us", "p95_us",
                                   "rss_growth_kb", "alive_after_hold") if k in r}
    print(json.dumps(brief), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
