#!/usr/bin/env bash
# Benchmark (not a test; run by hand): sysbench 1.0.20 through Lagless, against the primary
# directly and through HAProxy (TCP mode) as baselines, in alternating rounds.
#
#   scripts/bench.sh                                   # defaults below
#   DURATION=5 ROUNDS=1 THREADS="1 8" scripts/bench.sh
#
# Environment (defaults):
#   DURATION=20          seconds per sysbench run
#   ROUNDS=2             rounds; each round runs every test and thread count against
#                        direct → lagless → haproxy, so drift hits all three alike
#   THREADS="8"          sysbench thread counts
#   TESTS="oltp_point_select oltp_read_only"
#   WARMUP=2             seconds of unrecorded warm-up per target before the first round (0: none)
#   TABLES=4 TABLE_SIZE=10000
#   BENCH_DIR=target/bench-sandbox   the sandbox, proxy config, logs
#   BASE_PORT=3410 (primary; replicas 3411, 3412)  LAGLESS_PORT=6043  HAPROXY_PORT=6044
#   LAGLESS_LOG=info     the proxy's log filter
#
# Builds `cargo build --release -p lagless`; starts its own sandbox (1 primary + 2 replicas),
# the proxy and HAProxy; writes results/bench-<date>.md and .json and prints the Markdown.
# Everything it started is stopped on exit (proxy with SIGTERM, haproxy, `sandbox down`).
# It installs nothing, except sysbench and haproxy with apt-get when missing and run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-8}
TESTS=${TESTS:-oltp_point_select oltp_read_only}
WARMUP=${WARMUP:-2}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
BENCH_DIR=${BENCH_DIR:-target/bench-sandbox}
BASE_PORT=${BASE_PORT:-3410}
LAGLESS_PORT=${LAGLESS_PORT:-6043}
HAPROXY_PORT=${HAPROXY_PORT:-6044}
REPLICAS=2
HOST=127.0.0.1
APP_USER=app
APP_PASSWORD=lagless

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for v in DURATION ROUNDS TABLES TABLE_SIZE WARMUP BASE_PORT LAGLESS_PORT HAPROXY_PORT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
done
for t in $THREADS; do [[ $t =~ ^[1-9][0-9]*$ ]] || die "THREADS must be numbers, not '$t'"; done
for p in $BASE_PORT $LAGLESS_PORT $HAPROXY_PORT; do
  [ "$p" != 3306 ] || die "port 3306 is not ours to use"
done

# --- tools -------------------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
missing=()
have sysbench || missing+=(sysbench)
have haproxy || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "needs ${missing[*]}: sudo apt-get install -y ${missing[*]}"
  fi
  log "installing ${missing[*]} with apt-get (the only thing this script installs)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
have mariadbd || die "needs MariaDB (mariadb-server, mariadb-client): run scripts/setup.sh demo"
have mariadb || die "needs the mariadb client: run scripts/setup.sh demo"
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
command -v python3 >/dev/null || die "needs python3"

# --- build -------------------------------------------------------------------------------------
log "building: cargo build --release -p lagless"
cargo build --release --locked -p lagless
LAGLESS=$ROOT/target/release/lagless

# --- state and cleanup -------------------------------------------------------------------------
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
SANDBOX=$BENCH_DIR/sandbox
WORK=$BENCH_DIR/run
rm -rf "$WORK"
mkdir -p "$WORK/logs" results
DATE=$(date -u +%Y%m%d-%H%M%S)

PROXY_PID=""
HAPROXY_PID=""
SANDBOX_STARTED=""
cleaned=""

stop_pid() { # pid name: SIGTERM, wait up to 10 s, then SIGKILL; only our own children
  local pid=$1 name=$2 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    # A zombie still answers kill -0; it has stopped.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
    log "$name (pid $pid) did not stop after SIGTERM; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local code=$?
  [ -z "$cleaned" ] || return 0
  cleaned=1
  trap - INT TERM
  stop_pid "$PROXY_PID" lagless
  stop_pid "$HAPROXY_PID" haproxy
  if [ -n "$SANDBOX_STARTED" ]; then
    "$LAGLESS" --log warn sandbox down --dir "$SANDBOX" >/dev/null 2>&1 \
      || log "could not stop the sandbox: lagless sandbox down --dir $SANDBOX"
  fi
  [ "$code" -eq 0 ] || log "stopped (exit $code); logs in $WORK"
  return "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- ports: all free, or we stop before touching anything ------------------------------------
listening() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
if [ -f "$SANDBOX/sandbox.json" ]; then
  # Our own directory: a sandbox left by a run that was killed (SIGKILL skips the trap).
  log "stopping the sandbox a previous bench run left in $SANDBOX"
  "$LAGLESS" --log warn sandbox down --dir "$SANDBOX" >/dev/null
fi
for p in $(seq "$BASE_PORT" $((BASE_PORT + REPLICAS))) "$LAGLESS_PORT" "$HAPROXY_PORT"; do
  if listening "$p"; then die "port $p is in use by another process; set BASE_PORT/LAGLESS_PORT/HAPROXY_PORT"; fi
done

wait_port() { # port pid name
  local i
  for i in $(seq 100); do
    listening "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited at start; see its log in $WORK"
    sleep 0.1
  done
  die "$3 is not listening on $1 after 10 s; see its log in $WORK"
}

# --- sandbox -----------------------------------------------------------------------------------
log "starting the sandbox in $SANDBOX (primary on $BASE_PORT, replicas on $((BASE_PORT + 1))-$((BASE_PORT + REPLICAS)))"
SANDBOX_STARTED=1
"$LAGLESS" --log warn sandbox up --dir "$SANDBOX" --base-port "$BASE_PORT" --replicas "$REPLICAS" \
  >"$WORK/sandbox-up.log" 2>&1 || { cat "$WORK/sandbox-up.log" >&2; die "sandbox up failed"; }
"$LAGLESS" --log warn sandbox status --json --dir "$SANDBOX" >"$WORK/status.json"
MARIADB_VERSION=$(mariadb --no-defaults -h"$HOST" -P"$BASE_PORT" -u"$APP_USER" -p"$APP_PASSWORD" -N -e 'SELECT VERSION()')

# --- sysbench data, through the primary directly ------------------------------------------------
sb_common=(--db-driver=mysql --mysql-host="$HOST" --mysql-user="$APP_USER"
  --mysql-password="$APP_PASSWORD" --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE")
log "preparing sbtest: $TABLES tables x $TABLE_SIZE rows"
sysbench oltp_read_only "${sb_common[@]}" --mysql-port="$BASE_PORT" --threads="$TABLES" prepare \
  >"$WORK/prepare.log" 2>&1 || { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }

# --- lagless -----------------------------------------------------------------------------------
"$LAGLESS" passwd --password "$APP_PASSWORD" >"$WORK/passwd.txt"
python3 scripts/bench/report.py config "$WORK/status.json" "$WORK/passwd.txt" "$HOST:$LAGLESS_PORT" \
  >"$WORK/lagless.toml"
log "starting lagless on $HOST:$LAGLESS_PORT"
"$LAGLESS" --config "$WORK/lagless.toml" --log "${LAGLESS_LOG:-info}" >"$WORK/lagless.log" 2>&1 &
PROXY_PID=$!
wait_port "$LAGLESS_PORT" "$PROXY_PID" lagless

# --- haproxy -----------------------------------------------------------------------------------
sed -e "s|@LISTEN@|$HOST:$HAPROXY_PORT|" -e "s|@BACKEND@|$HOST:$BASE_PORT|" \
  -e "s|@PIDFILE@|$WORK/haproxy.pid|" scripts/bench/haproxy.cfg >"$WORK/haproxy.cfg"
"$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || die "haproxy refuses $WORK/haproxy.cfg"
log "starting haproxy on $HOST:$HAPROXY_PORT"
"$HAPROXY" -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
wait_port "$HAPROXY_PORT" "$HAPROXY_PID" haproxy

declare -A PORT=([direct]=$BASE_PORT [lagless]=$LAGLESS_PORT [haproxy]=$HAPROXY_PORT)
declare -A PID=([direct]="" [lagless]=$PROXY_PID [haproxy]=$HAPROXY_PID)
TARGETS=(direct lagless haproxy)

for t in "${TARGETS[@]}"; do
  mariadb --no-defaults -h"$HOST" -P"${PORT[$t]}" -u"$APP_USER" -p"$APP_PASSWORD" sbtest \
    -N -e 'SELECT COUNT(*) FROM sbtest1' >/dev/null 2>"$WORK/check-$t.log" \
    || { cat "$WORK/check-$t.log" >&2; die "cannot query sbtest through $t (port ${PORT[$t]})"; }
done

# utime+stime of a process (all its threads), in clock ticks.
cpu_ticks() {
  local line rest
  read -r line <"/proc/$1/stat"
  rest=${line##*) }           # fields from 3 (state) on; the name may contain spaces
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))    # fields 14 and 15
}
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# --- runs --------------------------------------------------------------------------------------
export BENCH_DATE=$DATE BENCH_HAPROXY=$HAPROXY BENCH_MARIADB_VERSION=$MARIADB_VERSION \
  BENCH_TESTS="$TESTS" BENCH_THREADS="$THREADS" BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS \
  BENCH_WARMUP=$WARMUP BENCH_TABLES=$TABLES BENCH_TABLE_SIZE=$TABLE_SIZE BENCH_BASE_PORT=$BASE_PORT \
  BENCH_LAGLESS_PORT=$LAGLESS_PORT BENCH_HAPROXY_PORT=$HAPROXY_PORT
python3 scripts/bench/report.py meta >"$WORK/meta.json"

if [ "$WARMUP" -gt 0 ]; then
  log "warm-up: ${WARMUP} s per target"
  for t in "${TARGETS[@]}"; do
    sysbench oltp_read_only "${sb_common[@]}" --mysql-port="${PORT[$t]}" --threads=4 \
      --time="$WARMUP" run >"$WORK/logs/warmup-$t.log" 2>&1 \
      || { cat "$WORK/logs/warmup-$t.log" >&2; die "warm-up through $t failed"; }
  done
fi

nthreads=$(wc -w <<<"$THREADS")
ntests=$(wc -w <<<"$TESTS")
total=$((ROUNDS * ntests * nthreads * ${#TARGETS[@]}))
log "$total runs of $DURATION s (about $((total * (DURATION + 1) / 60 + 1)) min)"
RUNS=$WORK/runs.tsv
: >"$RUNS"
n=0
for round in $(seq "$ROUNDS"); do
  for test in $TESTS; do
    for threads in $THREADS; do
      for t in "${TARGETS[@]}"; do
        n=$((n + 1))
        out=$WORK/logs/r$round-$test-$threads-$t.log
        pid=${PID[$t]}
        before="" after="" hwm=""
        [ -z "$pid" ] || before=$(cpu_ticks "$pid")
        start=$(date +%s.%N)
        code=0
        sysbench "$test" "${sb_common[@]}" --mysql-port="${PORT[$t]}" --threads="$threads" \
          --time="$DURATION" --report-interval=0 --percentile=95 --histogram=on run \
          >"$out" 2>&1 || code=$?
        end=$(date +%s.%N)
        if [ -n "$pid" ]; then
          kill -0 "$pid" 2>/dev/null || die "$t (pid $pid) died during $out; see $WORK/$t.log"
          after=$(cpu_ticks "$pid")
          hwm=$(peak_rss_kb "$pid")
        fi
        wall=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$test" "$threads" "$t" \
          "${PORT[$t]}" "$out" "$code" "$wall" "$before" "$after" "$hwm" >>"$RUNS"
        qps=$(sed -n 's/^ *queries: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p' "$out")
        log "[$n/$total] round $round $test $threads threads $t: ${qps:-FAILED (exit $code, $out)} qps"
      done
    done
  done
done

# --- report ------------------------------------------------------------------------------------
status=0
python3 scripts/bench/report.py report "$RUNS" "$WORK/meta.json" \
  "results/bench-$DATE.md" "results/bench-$DATE.json" || status=$?
log "wrote results/bench-$DATE.md and results/bench-$DATE.json (sysbench logs in $WORK/logs)"
exit "$status"
