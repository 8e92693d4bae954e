#!/usr/bin/env bash
# Instructions per statement on the proxy's forwarding path, counted by valgrind's callgrind
# (instruction counts are stable on a noisy machine; wall times are not). Not a test.
#
#   scripts/callgrind.sh                 # point select, 100-row result, prepared point select
#   N=5000 ONLY=point scripts/callgrind.sh
#   MODE=proxy N=5000 scripts/callgrind.sh   # the lagless binary under sysbench, real servers
#
# MODE=bench (default) runs the `forwarding` benchmark of lagless-proxy
# (crates/proxy/benches/forwarding.rs): the real session engine (Engine::handle: intercept,
# classify, route, pool checkout, session sync, relay, record, release) on a current-thread
# tokio runtime, a client and a fake MariaDB backend on loopback TCP that replays canned
# responses. Callgrind collects only inside `measured_window` (the N measured statements, after
# WARMUP), on the engine's thread, so the count covers Lagless's user-space work per statement
# including tokio's I/O driver, not the kernel nor the client and backend threads.
#
# MODE=proxy starts a sandbox (1 primary + 2 replicas, ports from BASE_PORT=3530) and the release
# `lagless` binary under callgrind with instrumentation off (eventual consistency, monitor and admin
# off so that only statements are counted), warms it up with sysbench oltp_point_select (text
# protocol, 1 thread), turns instrumentation on with callgrind_control for N events, off again, and
# divides the proxy's instructions (every thread: the multi-threaded runtime as in production)
# by the queries sysbench reports. LAGLESS_BIN skips the build. LISTENER_TOML adds keys to the
# proxy's [listener] section, e.g. LISTENER_TOML='runtime = "thread_per_core"'.
#
# Both print instructions per statement and the top inclusive and exclusive costs; the raw files
# stay in OUT for callgrind_annotate / kcachegrind.
#
# Environment (defaults): MODE=bench N=2000 WARMUP=200 ONLY="point range ps"
#   OUT=results/callgrind TOP=30
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
WARMUP=${WARMUP:-200}
ONLY=${ONLY:-point range ps}
OUT=${OUT:-results/callgrind}
TOP=${TOP:-30}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
mkdir -p "$OUT"
MODE=${MODE:-bench}
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

report() { # file count label
  local file=$1 count=$2 label=$3 ir
  ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$file" | head -1)
  echo "== $label: $ir instructions in $count statements = $((ir / count)) instructions/statement ($file)"
  # (|| true: head closes the pipe early)
  echo "-- top inclusive (under 99%, without the runtime's scaffolding)"
  { callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
    awk '/file:function/ {on=1; next} on && NF {p=$2; gsub(/[(%)]/, "", p); if (p + 0 < 99) print}' |
    grep -v 'tests/support/forwarding.rs\|/library/std/src/\|current_thread/mod.rs\|runtime/context' |
    head -"$TOP" | cut -c1-170; } || true
  echo "-- top exclusive"
  { callgrind_annotate "$file" 2>/dev/null | awk '/file:function/ {on=1; next} on && NF' |
    head -20 | cut -c1-170; } || true
}

if [ "$MODE" = proxy ]; then
  BASE_PORT=${BASE_PORT:-3530}
  LAGLESS_PORT=${LAGLESS_PORT:-$((BASE_PORT + 10))}
  HOST=127.0.0.1
  command -v sysbench >/dev/null || { echo "sysbench is needed" >&2; exit 1; }
  if [ -z "${LAGLESS_BIN:-}" ]; then
    cargo build --release -p lagless >&2
    LAGLESS_BIN=target/release/lagless
  fi
  WORK=$(mktemp -d /tmp/lagless-callgrind.XXXXXX)
  SANDBOX=$WORK/sandbox
  PROXY_PID=""
  cleanup() {
    if [ -n "$PROXY_PID" ]; then kill "$PROXY_PID" 2>/dev/null || true; fi
    "$LAGLESS_BIN" --log warn sandbox down --dir "$SANDBOX" >/dev/null 2>&1 || true
  }
  trap cleanup EXIT
  "$LAGLESS_BIN" --log warn sandbox up --dir "$SANDBOX" --base-port "$BASE_PORT" --replicas 2 \
    >"$WORK/sandbox-up.log" 2>&1 || { cat "$WORK/sandbox-up.log" >&2; exit 1; }
  "$LAGLESS_BIN" --log warn sandbox status --json --dir "$SANDBOX" >"$WORK/status.json"
  "$LAGLESS_BIN" passwd --password lagless >"$WORK/passwd.txt"
  sb=(--db-driver=mysql --mysql-host=$HOST --mysql-user=app --mysql-password=lagless
    --mysql-db=sbtest --tables=1 --table-size=10000)
  sysbench oltp_point_select "${sb[@]}" --mysql-port="$BASE_PORT" prepare >"$WORK/prepare.log" 2>&1
  BENCH_CONSISTENCY=eventual python3 scripts/bench/report.py config "$WORK/status.json" \
    "$WORK/passwd.txt" "$HOST:$LAGLESS_PORT" >"$WORK/lagless.toml"
  printf '\n[monitor]\nenabled = false\n\n[admin]\nenabled = false\n' >>"$WORK/lagless.toml"
  if [ -n "${LISTENER_TOML:-}" ]; then
    LISTENER_TOML=$LISTENER_TOML python3 -c 'import os, re, sys
p = sys.argv[1]
text = re.sub(r"(?m)^\[listener\]\s*$", "[listener]\n" + os.environ["LISTENER_TOML"], open(p).read(), count=1)
open(p, "w").write(text)' "$WORK/lagless.toml"
  fi
  # Replicas catch up with the prepared table before reads go there.
  sleep 2
  file="$OUT/callgrind.proxy.$rev.out"
  rm -f "$file"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$file" \
    "$LAGLESS_BIN" --config "$WORK/lagless.toml" --log warn >"$WORK/lagless.log" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/$HOST/$LAGLESS_PORT") 2>/dev/null && break
    kill -0 "$PROXY_PID" 2>/dev/null || { cat "$WORK/lagless.log" >&2; exit 1; }
    sleep 0.1
  done
  run_sb() { # events log
    sysbench oltp_point_select "${sb[@]}" --mysql-port="$LAGLESS_PORT" --db-ps-mode=disable \
      --threads=1 --time=0 --events="$1" run >"$2" 2>&1
  }
  run_sb 500 "$WORK/warmup.log" || { cat "$WORK/warmup.log" >&2; exit 1; }
  callgrind_control -i on "$PROXY_PID" >/dev/null 2>&1
  run_sb "$N" "$WORK/run.log" || { cat "$WORK/run.log" >&2; exit 1; }
  callgrind_control -i off "$PROXY_PID" >/dev/null 2>&1
  queries=$(sed -n 's/^ *queries: *\([0-9]*\).*/\1/p' "$WORK/run.log")
  kill -TERM "$PROXY_PID"
  wait "$PROXY_PID" || true
  PROXY_PID=""
  grep -h "queries:\|avg:" "$WORK/run.log" | sed 's/^ */   sysbench under callgrind: /'
  report "$file" "$queries" "lagless process, sysbench oltp_point_select (text, 1 thread)"
  exit 0
fi

bin=$(cargo bench -p lagless-proxy --bench forwarding --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the forwarding benchmark" >&2; exit 1; }
for what in $ONLY; do
  file="$OUT/callgrind.$what.$rev.out"
  rm -f "$file" "$file"-*
  FWD_ONLY=$what FWD_N=$N FWD_WARMUP=$WARMUP valgrind --tool=callgrind \
    --toggle-collect='*measured_window*' --separate-threads=yes \
    --callgrind-out-file="$file" "$bin" --bench >"$OUT/$what.log" 2>&1
  # Only the engine's thread collects (the toggle is per thread): keep the file with events.
  best=""
  best_ir=0
  for f in "$file"-*; do
    ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f" | head -1)
    if [ "${ir:-0}" -gt "$best_ir" ]; then
      best=$f
      best_ir=$ir
    fi
  done
  for f in "$file"-*; do
    [ "$f" = "$best" ] || rm -f "$f"
  done
  mv "$best" "$file"
  grep -h "allocations/statement" "$OUT/$what.log" | sed 's/^/   /' || true
  report "$file" "$N" "$what"
done
