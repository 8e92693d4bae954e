#!/usr/bin/env bash
# Benchmark (not a test; run by hand): sysbench 1.0.20 through Lagless, against the primary
# directly and through HAProxy (TCP mode) as baselines, in alternating rounds; optionally read
# scaling with CPU-quota'd servers, connection set-up latency and idle connections.
#
#   scripts/bench.sh                                   # defaults below
#   DURATION=5 ROUNDS=1 THREADS="1 8" scripts/bench.sh
#   # everything the performance issue asks, in one run:
#   TESTS="oltp_point_select oltp_read_only oltp_read_only+skip_trx oltp_read_write \
#     oltp_read_write+skip_trx" PS_MODES="disable auto" THREADS="1 8 64" CPU_QUOTA=0.5 \
#     CONNECT=500 IDLE=10000 scripts/bench.sh
#   THREADS=1000 TESTS=oltp_point_select TARGETS="direct lagless" scripts/bench.sh
#
# Environment (defaults):
#   DURATION=20          seconds per sysbench run
#   ROUNDS=2             rounds; each round runs every test, PS mode and thread count against
#                        the targets in turn (direct → lagless → haproxy), so drift hits all alike
#   THREADS="8"          sysbench thread counts (e.g. "1 8 64"; "1000" raises ulimit -n and the
#                        servers' max_connections, see MARIADB_MAX_CONNECTIONS)
#   TESTS="oltp_point_select oltp_read_only"   sysbench tests; TEST+OPT adds --OPT=on, so
#                        oltp_read_only+skip_trx runs it in autocommit mode. Without skip_trx,
#                        oltp_read_only and oltp_read_write put every statement inside
#                        BEGIN...COMMIT, which Lagless sends to the primary (whatever the
#                        consistency mode): only oltp_point_select and the +skip_trx variants
#                        read from the replicas. skip_trx runs ignore error 1062 (with no
#                        transaction, oltp_read_write's DELETE+INSERT of one id races between
#                        threads) besides sysbench's default 1213,1020,1205; TESTS="" skips
#                        the sysbench matrix (for a CONNECT or IDLE run alone)
#   PS_MODES="auto"      sysbench --db-ps-mode values: auto = prepared statements (sysbench's
#                        default), disable = text protocol; "disable auto" runs both
#   TARGETS="direct lagless haproxy"   direct = the primary; lagless = Lagless with the
#                        consistency LAGLESS_CONSISTENCY; haproxy = HAProxy TCP mode in front of
#                        the primary; lagless_nomux (not by default) = a second Lagless process,
#                        the same config (POOL_TOML included) but `[pool] multiplex = false`
#                        and no per-server cap, for the gain of multiplexing; also run in the
#                        CPU_QUOTA phase; lagless_pinned (not by default) = a second Lagless
#                        process, the same config with `[listener] pin_worker_threads = true`;
#                        lagless_tpc (not by default) = a second Lagless process, the same
#                        config with `[listener] runtime = "thread_per_core"` and
#                        `pin_worker_threads = TPC_PIN`; also run in the CPU_QUOTA phase;
#                        lagless_optimistic (not by default) = a second Lagless process, the
#                        same config with `[routing] optimistic_transactions = true`; also run
#                        in the CPU_QUOTA phase; lagless_replay (not by default) = a second
#                        Lagless process, the same config with `[failover] transaction_replay
#                        = true`; direct_socket (not by default) = the primary over its Unix
#                        socket; lagless_socket (not by default) = a second Lagless process,
#                        the same config with `[listener] socket` and every server's `socket`
#                        set: sysbench on Lagless's Unix socket, Lagless on the servers'
#                        sockets (all on one host); lagless_socket_tcp = that process over
#                        TCP (only the servers on sockets: Lagless on the database host);
#                        lagless_socket_tpc = lagless_socket with the thread_per_core runtime
#                        (pin_worker_threads = TPC_PIN); haproxy_socket = the same HAProxy
#                        process on a Unix socket, in front of the primary's socket.
#                        When lagless is listed, oltp_read_write* tests also run
#                        against lagless_gtid_wait: the same proxy, a user whose consistency is
#                        gtid_wait(GTID_WAIT_MS)
#   LAGLESS_CONSISTENCY=eventual   [consistency] default of the generated config
#   GTID_WAIT_MS=1000    off: no gtid_wait user and no lagless_gtid_wait target (the proxy then
#                        has no user in a GTID mode, so with LAGLESS_CONSISTENCY=eventual its
#                        binlog_streaming = "auto" leaves the replicas unstreamed)
#   WARMUP=2             seconds of unrecorded warm-up per target before the first round (0: none)
#   TABLES=4 TABLE_SIZE=10000
#   CPU_QUOTA=           e.g. 0.5: after the matrix, put each mariadbd into its own cpu cgroup
#                        limited to 0.5 core (v1 cpu.cfs_quota_us, or v2 cpu.max) and compare
#                        QUOTA_TEST direct vs through Lagless (which reads from both replicas)
#   CPU_PERIOD_US=100000 the quota's period (the kernel's default 100 ms); a shorter one (10000)
#                        spreads a small quota evenly instead of stalling every thread of a
#                        server for the rest of each 100 ms once the quota is spent
#   QUOTA_TEST=oltp_read_only+skip_trx QUOTA_THREADS="8" QUOTA_PS_MODE=auto
#   CONNECT=0            e.g. 500: sequential connections per target and round, each timed
#                        over connect + handshake + auth + SELECT 1 + close (PyMySQL)
#   IDLE=0               e.g. 10000: authenticated idle client connections to Lagless; reports
#                        its RSS before/after and how many succeeded
#   IDLE_HOLD=5          seconds the idle connections are held before measuring
#   MARIADB_MAX_CONNECTIONS=   SET GLOBAL max_connections on every server after start; default:
#                        the sandbox's own 500, raised to the largest thread count + 100 when
#                        that is more (never raised for IDLE: what Lagless does at the servers'
#                        limit is part of what IDLE shows)
#   LAGLESS_MAX_CONNECTIONS=   [listener] max_connections; default 10000, or IDLE + 100 /
#                        the largest thread count + 100 when more
#   NOFILE=              ulimit -n for everything started here; default: raised only when a
#                        thread count over 400 or IDLE needs it
#   POOL_MAX_PER_SERVER= [pool] max_per_server in the generated Lagless config (backend
#                        connections per server; unset: Lagless's default, 0 = no cap)
#   POOL_TOML=           TOML appended to the generated Lagless config, e.g.
#                        POOL_TOML=$'[pool]\nmultiplex = false' (not with POOL_MAX_PER_SERVER,
#                        which writes the [pool] header itself: put every pool key here then)
#   LAGLESS_BIN=         use this lagless binary instead of `cargo build --release -p lagless`
#   BENCH_DIR=target/bench-sandbox   the sandbox, proxy config, logs
#   BASE_PORT=3410 (primary; replicas 3411, 3412)  LAGLESS_PORT=6043  HAPROXY_PORT=6044
#   NOMUX_PORT=6045 (lagless_nomux)  PINNED_PORT=6046 (lagless_pinned)  TPC_PORT=6047 (lagless_tpc)
#   OPTIMISTIC_PORT=6048 (lagless_optimistic)  REPLAY_PORT=6049 (lagless_replay)
#   SOCKET_PORT=6050 (lagless_socket's TCP port: lagless_socket_tcp)  SOCKET_TPC_PORT=6051
#
# Every run through a proxy also records the proxy's peak number of established connections to
# the servers' ports or Unix sockets (sampled with `ss` every 0.5 s during the run): its backend
# connections, the monitor's included.
#   LAGLESS_LOG=info     the proxy's log filter
#
# Builds `cargo build --release -p lagless`; starts its own sandbox (1 primary + 2 replicas),
# the proxy and HAProxy; writes results/bench-<date>.md and .json and prints the Markdown.
# Everything it started is stopped on exit (proxy with SIGTERM, haproxy, `sandbox down`,
# cgroups moved back and removed).
# It installs nothing, except sysbench and haproxy with apt-get when missing and run as root
# (CONNECT and IDLE need .venv with PyMySQL: scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-8}
TESTS=${TESTS-oltp_point_select oltp_read_only}
PS_MODES=${PS_MODES:-auto}
TARGETS=${TARGETS:-direct lagless haproxy}
LAGLESS_CONSISTENCY=${LAGLESS_CONSISTENCY:-eventual}
GTID_WAIT_MS=${GTID_WAIT_MS:-1000}
WARMUP=${WARMUP:-2}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
CPU_QUOTA=${CPU_QUOTA:-}
CPU_PERIOD_US=${CPU_PERIOD_US:-100000}
QUOTA_TEST=${QUOTA_TEST:-oltp_read_only+skip_trx}
QUOTA_THREADS=${QUOTA_THREADS:-8}
QUOTA_PS_MODE=${QUOTA_PS_MODE:-auto}
CONNECT=${CONNECT:-0}
IDLE=${IDLE:-0}
IDLE_HOLD=${IDLE_HOLD:-5}
MARIADB_MAX_CONNECTIONS=${MARIADB_MAX_CONNECTIONS:-}
LAGLESS_MAX_CONNECTIONS=${LAGLESS_MAX_CONNECTIONS:-}
NOFILE=${NOFILE:-}
POOL_MAX_PER_SERVER=${POOL_MAX_PER_SERVER:-}
POOL_TOML=${POOL_TOML:-}
LAGLESS_BIN=${LAGLESS_BIN:-}
BENCH_DIR=${BENCH_DIR:-target/bench-sandbox}
BASE_PORT=${BASE_PORT:-3410}
LAGLESS_PORT=${LAGLESS_PORT:-6043}
HAPROXY_PORT=${HAPROXY_PORT:-6044}
NOMUX_PORT=${NOMUX_PORT:-6045}
PINNED_PORT=${PINNED_PORT:-6046}
TPC_PORT=${TPC_PORT:-6047}
OPTIMISTIC_PORT=${OPTIMISTIC_PORT:-6048}
REPLAY_PORT=${REPLAY_PORT:-6049}
SOCKET_PORT=${SOCKET_PORT:-6050}
SOCKET_TPC_PORT=${SOCKET_TPC_PORT:-6051}
TPC_PIN=${TPC_PIN:-true}   # lagless_tpc's pin_worker_threads
REPLICAS=2
HOST=127.0.0.1
APP_USER=app
APP_PASSWORD=lagless
GW_USER=app_gtid_wait   # same password; consistency gtid_wait(GTID_WAIT_MS)
[ "$GTID_WAIT_MS" != off ] || GW_USER=""
SANDBOX_MAX_CONNECTIONS=500   # what crates/sandbox writes in each server's cnf
PY=$ROOT/.venv/bin/python

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for v in DURATION ROUNDS TABLES TABLE_SIZE WARMUP BASE_PORT LAGLESS_PORT HAPROXY_PORT NOMUX_PORT PINNED_PORT TPC_PORT OPTIMISTIC_PORT REPLAY_PORT SOCKET_PORT SOCKET_TPC_PORT CPU_PERIOD_US \
  CONNECT IDLE IDLE_HOLD; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
done
[[ $TPC_PIN =~ ^(true|false)$ ]] || die "TPC_PIN must be true or false, not '$TPC_PIN'"
export TPC_PIN
[[ $GTID_WAIT_MS =~ ^([0-9]+|off)$ ]] || die "GTID_WAIT_MS must be a number or off, not '$GTID_WAIT_MS'"
for v in MARIADB_MAX_CONNECTIONS LAGLESS_MAX_CONNECTIONS NOFILE POOL_MAX_PER_SERVER; do
  [[ -z ${!v} || ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
done
if [ -n "$POOL_MAX_PER_SERVER" ] && grep -q '^[[:space:]]*\[pool\]' <<<"$POOL_TOML"; then
  die "POOL_TOML has a [pool] section: put max_per_server there instead of POOL_MAX_PER_SERVER"
fi
for t in $THREADS $QUOTA_THREADS; do
  [[ $t =~ ^[1-9][0-9]*$ ]] || die "THREADS and QUOTA_THREADS must be numbers, not '$t'"
done
for m in $PS_MODES $QUOTA_PS_MODE; do
  [[ $m == auto || $m == disable ]] || die "PS_MODES must be auto and/or disable, not '$m'"
done
for t in $TARGETS; do
  [[ $t =~ ^(direct|lagless|haproxy|lagless_nomux|lagless_pinned|lagless_tpc|lagless_optimistic|lagless_replay|direct_socket|lagless_socket|lagless_socket_tcp|lagless_socket_tpc|haproxy_socket)$ ]] \
    || die "TARGETS: direct, lagless, haproxy, lagless_nomux, lagless_pinned, lagless_tpc, lagless_optimistic, lagless_replay, direct_socket, lagless_socket, lagless_socket_tcp, lagless_socket_tpc, haproxy_socket, not '$t'"
done
for t in $TESTS $QUOTA_TEST; do
  [[ $t =~ ^oltp_[a-z_]+(\+[a-z_]+(=[A-Za-z0-9_]+)?)*$ ]] || die "not a sysbench test spec: '$t'"
done
[[ -z $CPU_QUOTA || $CPU_QUOTA =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] \
  || die "CPU_QUOTA must be a number of cores (e.g. 0.5), not '$CPU_QUOTA'"
for p in $BASE_PORT $LAGLESS_PORT $HAPROXY_PORT $NOMUX_PORT $PINNED_PORT $TPC_PORT $OPTIMISTIC_PORT $REPLAY_PORT; do
  [ "$p" != 3306 ] || die "port 3306 is not ours to use"
done
[ -n "$TESTS$CPU_QUOTA" ] || [ "$CONNECT" -gt 0 ] || [ "$IDLE" -gt 0 ] \
  || die "nothing to run: TESTS is empty and neither CPU_QUOTA, CONNECT nor IDLE is set"

max_threads=1
for t in $THREADS; do [ "$t" -le "$max_threads" ] || max_threads=$t; done
if [ -n "$CPU_QUOTA" ]; then
  for t in $QUOTA_THREADS; do [ "$t" -le "$max_threads" ] || max_threads=$t; done
fi
if [ -z "$MARIADB_MAX_CONNECTIONS" ] && [ $((max_threads + 100)) -gt "$SANDBOX_MAX_CONNECTIONS" ]; then
  MARIADB_MAX_CONNECTIONS=$((max_threads + 100))
fi
if [ -z "$LAGLESS_MAX_CONNECTIONS" ]; then
  LAGLESS_MAX_CONNECTIONS=10000
  [ $((IDLE + 100)) -le "$LAGLESS_MAX_CONNECTIONS" ] || LAGLESS_MAX_CONNECTIONS=$((IDLE + 100))
  [ $((max_threads + 100)) -le "$LAGLESS_MAX_CONNECTIONS" ] || LAGLESS_MAX_CONNECTIONS=$((max_threads + 100))
fi

HAPROXY_MAXCONN=4096
[ $((max_threads + 100)) -le "$HAPROXY_MAXCONN" ] || HAPROXY_MAXCONN=$((max_threads + 100))

# --- file descriptors: before anything starts, so the servers and the proxy inherit them -------
if [ -z "$NOFILE" ]; then
  # Lagless: a client socket and up to three backend sockets per session; the idle client
  # holds IDLE sockets; mariadbd one per connection.
  need=$((4 * (max_threads > IDLE ? max_threads : IDLE) + 4096))
  [ "$need" -le "$(ulimit -n)" ] || NOFILE=$need
fi
if [ -n "$NOFILE" ]; then
  if ! ulimit -n "$NOFILE" 2>/dev/null; then
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
    log "could not set ulimit -n $NOFILE (hard limit $(ulimit -Hn); raising it needs root with CAP_SYS_RESOURCE); using $(ulimit -n)"
  fi
fi

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
if [ "$CONNECT" -gt 0 ] || [ "$IDLE" -gt 0 ]; then
  "$PY" -c 'import pymysql' 2>/dev/null || die "CONNECT/IDLE need $PY with PyMySQL: scripts/setup.sh test"
fi

# --- cgroups for CPU_QUOTA: checked before anything starts ------------------------------------
CG_VERSION=""
CG_ROOT=""
if [ -n "$CPU_QUOTA" ]; then
  [ "$(id -u)" -eq 0 ] || die "CPU_QUOTA needs root (it creates cgroups)"
  if [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] && [ -w /sys/fs/cgroup/cpu/cgroup.procs ]; then
    CG_VERSION=1
    CG_ROOT=/sys/fs/cgroup/cpu
  elif [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] \
    && grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    CG_VERSION=2
    CG_ROOT=/sys/fs/cgroup
  else
    die "CPU_QUOTA: neither a writable cgroup v1 cpu hierarchy (/sys/fs/cgroup/cpu) nor cgroup v2 with the cpu controller"
  fi
  CG_PERIOD=$CPU_PERIOD_US
  CG_QUOTA=$(awk -v q="$CPU_QUOTA" -v p="$CG_PERIOD" 'BEGIN {printf "%d", q * p}')
  [ "$CG_QUOTA" -ge 1000 ] || die "CPU_QUOTA=$CPU_QUOTA of a ${CG_PERIOD} µs period is under the kernel's 1 ms minimum"
fi

# --- build -------------------------------------------------------------------------------------
if [ -n "$LAGLESS_BIN" ]; then
  LAGLESS=$(cd "$(dirname "$LAGLESS_BIN")" && pwd)/$(basename "$LAGLESS_BIN")
  [ -x "$LAGLESS" ] || die "LAGLESS_BIN=$LAGLESS_BIN is not an executable"
  log "using $LAGLESS (no build)"
else
  log "building: cargo build --release -p lagless"
  cargo build --release --locked -p lagless
  LAGLESS=$ROOT/target/release/lagless
fi

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
NOMUX_PID=""
PINNED_PID=""
TPC_PID=""
OPTIMISTIC_PID=""
REPLAY_PID=""
SOCKET_PID=""
SOCKET_TPC_PID=""
SANDBOX_STARTED=""
cleaned=""
CG_DIRS=()    # cgroups we created
CG_MOVES=()   # "pid original-cgroup-dir" to move back
CG_ENABLED_CPU=""   # v2: we enabled the cpu controller in the root's subtree_control

# shellcheck disable=SC2317  # run from the EXIT trap, as are cg_release and cleanup
stop_pid() { # pid name: SIGTERM, wait up to 10 s, then SIGKILL; only our own children
  local pid=$1 name=$2 _
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
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

# shellcheck disable=SC2317
cg_release() { # move our servers back to where they were, remove our cgroups
  local m pid orig d _
  for m in ${CG_MOVES[@]+"${CG_MOVES[@]}"}; do
    pid=${m%% *} orig=${m#* }
    [ -d "/proc/$pid" ] || continue
    echo "$pid" >"$orig/cgroup.procs" 2>/dev/null || log "could not move pid $pid back to $orig"
  done
  CG_MOVES=()
  for d in ${CG_DIRS[@]+"${CG_DIRS[@]}"}; do
    for _ in $(seq 50); do
      [ -d "$d" ] || break
      rmdir "$d" 2>/dev/null && break
      sleep 0.1
    done
    [ ! -d "$d" ] || log "could not remove cgroup $d"
  done
  CG_DIRS=()
  if [ -n "$CG_ENABLED_CPU" ]; then
    echo -cpu >"$CG_ROOT/cgroup.subtree_control" 2>/dev/null \
      || log "left the cpu controller enabled in $CG_ROOT/cgroup.subtree_control"
    CG_ENABLED_CPU=""
  fi
}

# shellcheck disable=SC2317
cleanup() {
  local code=$?
  [ -z "$cleaned" ] || return 0
  cleaned=1
  trap - INT TERM
  stop_pid "$PROXY_PID" lagless
  stop_pid "$HAPROXY_PID" haproxy
  stop_pid "$NOMUX_PID" lagless_nomux
  stop_pid "$PINNED_PID" lagless_pinned
  stop_pid "$TPC_PID" lagless_tpc
  stop_pid "$OPTIMISTIC_PID" lagless_optimistic
  stop_pid "$REPLAY_PID" lagless_replay
  stop_pid "$SOCKET_PID" lagless_socket
  stop_pid "$SOCKET_TPC_PID" lagless_socket_tpc
  if [ -n "$SANDBOX_STARTED" ]; then
    "$LAGLESS" --log warn sandbox down --dir "$SANDBOX" >/dev/null 2>&1 \
      || log "could not stop the sandbox: lagless sandbox down --dir $SANDBOX"
  fi
  cg_release
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
if [ -n "$CPU_QUOTA" ]; then
  # cgroups a killed run left (empty once its servers are gone).
  for d in "$CG_ROOT"/lagless-bench-"$BASE_PORT"-*; do
    if [ -d "$d" ]; then rmdir "$d" 2>/dev/null || true; fi
  done
fi
for p in $(seq "$BASE_PORT" $((BASE_PORT + REPLICAS))) "$LAGLESS_PORT" "$HAPROXY_PORT" "$NOMUX_PORT" \
  "$PINNED_PORT" "$TPC_PORT" "$OPTIMISTIC_PORT" "$REPLAY_PORT" "$SOCKET_PORT" "$SOCKET_TPC_PORT"; do
  if listening "$p"; then die "port $p is in use by another process; set BASE_PORT/LAGLESS_PORT/HAPROXY_PORT/NOMUX_PORT/PINNED_PORT/TPC_PORT/OPTIMISTIC_PORT/REPLAY_PORT/SOCKET_PORT/SOCKET_TPC_PORT"; fi
done

wait_port() { # port pid name
  local _
  for _ in $(seq 100); do
    listening "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited at start; see its log in $WORK"
    sleep 0.1
  done
  die "$3 is not listening on $1 after 10 s; see its log in $WORK"
}

# --- sandbox -----------------------------------------------------------------------------------
log "starting the sandbox in $SANDBOX (primary on $BASE_PORT, replicas on $((BASE_PORT + 1))-$((BASE_PORT + REPLICAS))); ulimit -n $(ulimit -n)"
SANDBOX_STARTED=1
"$LAGLESS" --log warn sandbox up --dir "$SANDBOX" --base-port "$BASE_PORT" --replicas "$REPLICAS" \
  >"$WORK/sandbox-up.log" 2>&1 || { cat "$WORK/sandbox-up.log" >&2; die "sandbox up failed"; }
"$LAGLESS" --log warn sandbox status --json --dir "$SANDBOX" >"$WORK/status.json"
MARIADB_VERSION=$(mariadb --no-defaults -h"$HOST" -P"$BASE_PORT" -u"$APP_USER" -p"$APP_PASSWORD" -N -e 'SELECT VERSION()')

# "name port pid" of each server, and the admin account.
mapfile -t SERVERS < <(python3 -c '
import json, sys
st = json.load(open(sys.argv[1]))
for s in st["servers"]:
    print(s["name"], s["port"], s.get("pid") or "")
' "$WORK/status.json")
read -r ADMIN_USER ADMIN_PASSWORD < <(python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["users"]["admin"]
print(a["user"], a["password"])
' "$WORK/status.json")
admin_sql() { # port sql
  mariadb --no-defaults -h"$HOST" -P"$1" -u"$ADMIN_USER" -p"$ADMIN_PASSWORD" -N -e "$2"
}
if [ -n "$MARIADB_MAX_CONNECTIONS" ]; then
  log "SET GLOBAL max_connections = $MARIADB_MAX_CONNECTIONS on every server"
  for s in "${SERVERS[@]}"; do
    read -r name port _ <<<"$s"
    admin_sql "$port" "SET GLOBAL max_connections = $MARIADB_MAX_CONNECTIONS" \
      || die "could not raise max_connections on $name"
  done
fi
SERVER_LIMITS=$(admin_sql "$BASE_PORT" 'SELECT CONCAT(@@max_connections, " ", @@open_files_limit)')
log "primary: max_connections open_files_limit = $SERVER_LIMITS"

# --- sysbench data, through the primary directly ------------------------------------------------
sb_common=(--db-driver=mysql --mysql-password="$APP_PASSWORD"
  --mysql-db=sbtest --tables="$TABLES" --table-size="$TABLE_SIZE")
log "preparing sbtest: $TABLES tables x $TABLE_SIZE rows"
sysbench oltp_read_only "${sb_common[@]}" --mysql-user="$APP_USER" --mysql-host="$HOST" \
  --mysql-port="$BASE_PORT" --threads="$TABLES" prepare \
  >"$WORK/prepare.log" 2>&1 || { cat "$WORK/prepare.log" >&2; die "sysbench prepare failed"; }

# --- lagless -----------------------------------------------------------------------------------
"$LAGLESS" passwd --password "$APP_PASSWORD" >"$WORK/passwd.txt"
BENCH_CONSISTENCY=$LAGLESS_CONSISTENCY BENCH_GW_USER=$GW_USER \
  BENCH_GW_CONSISTENCY="gtid_wait($GTID_WAIT_MS)" BENCH_MAX_CONNECTIONS=$LAGLESS_MAX_CONNECTIONS \
  BENCH_POOL_MAX_PER_SERVER=$POOL_MAX_PER_SERVER \
  python3 scripts/bench/report.py config "$WORK/status.json" "$WORK/passwd.txt" "$HOST:$LAGLESS_PORT" \
  >"$WORK/lagless.toml"
if [ -n "$POOL_TOML" ]; then
  printf '\n# POOL_TOML\n%s\n' "$POOL_TOML" >>"$WORK/lagless.toml"
fi
log "starting lagless on $HOST:$LAGLESS_PORT (consistency $LAGLESS_CONSISTENCY${GW_USER:+; user $GW_USER: gtid_wait($GTID_WAIT_MS)})"
"$LAGLESS" --config "$WORK/lagless.toml" --log "${LAGLESS_LOG:-info}" >"$WORK/lagless.log" 2>&1 &
PROXY_PID=$!
wait_port "$LAGLESS_PORT" "$PROXY_PID" lagless

# A second Lagless process: lagless's config (POOL_TOML included) on its own port, without
# the admin port, changed by the Python code in $4 (which edits `text`).
start_variant() { # target port pid-variable python-edit
  local target=$1 port=$2 conf=$WORK/$1.toml
  python3 - "$WORK/lagless.toml" "$HOST:$LAGLESS_PORT" "$HOST:$port" "$4" >"$conf" <<'PY'
import re, sys
text = open(sys.argv[1]).read().replace(f'"{sys.argv[2]}"', f'"{sys.argv[3]}"', 1)
exec(sys.argv[4])
print(text + "\n[admin]\nenabled = false")
PY
  log "starting $target on $HOST:$port"
  "$LAGLESS" --config "$conf" --log "${LAGLESS_LOG:-info}" >"$WORK/$target.log" 2>&1 &
  printf -v "$3" '%s' $!
  wait_port "$port" "${!3}" "$target"
}
# A variant whose config has one more `key = true` in [section] (the section added if absent).
start_variant_with() { # target port pid-variable section key
  start_variant "$1" "$2" "$3" "
key, section = '$5', '$4'
text = re.sub(r'(?m)^\\s*' + key + r'\\s*=.*$', '', text)
header = r'(?m)^\\[' + section + r'\\]\\s*$'
if re.search(header, text):
    text = re.sub(header, '[' + section + ']\\n' + key + ' = true', text, count=1)
else:
    text += '\\n[' + section + ']\\n' + key + ' = true\\n'
"
}
if [[ " $TARGETS " == *" lagless_nomux "* ]]; then
  start_variant lagless_nomux "$NOMUX_PORT" NOMUX_PID '
text = re.sub(r"(?m)^\s*(multiplex|max_per_server)\s*=.*$", "", text)
if re.search(r"(?m)^\[pool\]\s*$", text):
    text = re.sub(r"(?m)^\[pool\]\s*$", "[pool]\nmultiplex = false\nmax_per_server = 0", text, count=1)
else:
    text += "\n[pool]\nmultiplex = false\nmax_per_server = 0\n"
'
fi
if [[ " $TARGETS " == *" lagless_pinned "* ]]; then
  start_variant_with lagless_pinned "$PINNED_PORT" PINNED_PID listener pin_worker_threads
fi
if [[ " $TARGETS " == *" lagless_tpc "* ]]; then
  start_variant lagless_tpc "$TPC_PORT" TPC_PID '
text = re.sub(r"(?m)^\s*runtime\s*=.*$", "", text)
text = re.sub(r"(?m)^\[listener\]\s*$", "[listener]\nruntime = \"thread_per_core\"\npin_worker_threads = " + __import__("os").environ["TPC_PIN"], text, count=1)
'
fi
if [[ " $TARGETS " == *" lagless_optimistic "* ]]; then
  start_variant_with lagless_optimistic "$OPTIMISTIC_PORT" OPTIMISTIC_PID routing optimistic_transactions
fi
if [[ " $TARGETS " == *" lagless_replay "* ]]; then
  start_variant_with lagless_replay "$REPLAY_PORT" REPLAY_PID failover transaction_replay
fi
LAGLESS_SOCKET=$WORK/lagless.sock
LAGLESS_TPC_SOCKET=$WORK/lagless_tpc.sock
# lagless's config with [listener] socket = $1 and every server's socket set (edits `text`).
socket_edit() {
  echo '
import json, os
text = re.sub(r"(?m)^\[listener\]\s*$", "[listener]\nsocket = \"'"$1"'\"", text, count=1)
for s in json.load(open(os.environ["BENCH_STATUS"]))["servers"]:
    text = text.replace("address = \"%s:%s\"" % (s["host"], s["port"]),
                        "address = \"%s:%s\"\nsocket = \"%s\"" % (s["host"], s["port"], s["socket"]), 1)
'
}
if [[ " $TARGETS " == *" lagless_socket "* || " $TARGETS " == *" lagless_socket_tcp "* ]]; then
  BENCH_STATUS=$WORK/status.json \
    start_variant lagless_socket "$SOCKET_PORT" SOCKET_PID "$(socket_edit "$LAGLESS_SOCKET")"
fi
if [[ " $TARGETS " == *" lagless_socket_tpc "* ]]; then
  BENCH_STATUS=$WORK/status.json start_variant lagless_socket_tpc "$SOCKET_TPC_PORT" SOCKET_TPC_PID \
    "$(socket_edit "$LAGLESS_TPC_SOCKET")"'
text = re.sub(r"(?m)^\s*runtime\s*=.*$", "", text)
text = re.sub(r"(?m)^\[listener\]\s*$", "[listener]\nruntime = \"thread_per_core\"\npin_worker_threads = " + os.environ["TPC_PIN"], text, count=1)
'
fi
PRIMARY_SOCKET=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["servers"][0]["socket"])' "$WORK/status.json")
SERVER_SOCKETS=$(python3 -c 'import json, sys; print(" ".join(s["socket"] for s in json.load(open(sys.argv[1]))["servers"]))' "$WORK/status.json")

# --- haproxy -----------------------------------------------------------------------------------
HAPROXY_SOCKET=$WORK/haproxy.sock
sed -e "s|@LISTEN@|$HOST:$HAPROXY_PORT|" -e "s|@BACKEND@|$HOST:$BASE_PORT|" \
  -e "s|@SOCKET@|$HAPROXY_SOCKET|" -e "s|@BACKEND_SOCKET@|$PRIMARY_SOCKET|" \
  -e "s|@PIDFILE@|$WORK/haproxy.pid|" -e "s|@MAXCONN@|$HAPROXY_MAXCONN|" \
  scripts/bench/haproxy.cfg >"$WORK/haproxy.cfg"
"$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || die "haproxy refuses $WORK/haproxy.cfg"
log "starting haproxy on $HOST:$HAPROXY_PORT"
"$HAPROXY" -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
wait_port "$HAPROXY_PORT" "$HAPROXY_PID" haproxy

declare -A PORT=([direct]=$BASE_PORT [lagless]=$LAGLESS_PORT [lagless_gtid_wait]=$LAGLESS_PORT
  [haproxy]=$HAPROXY_PORT [lagless_nomux]=$NOMUX_PORT [lagless_pinned]=$PINNED_PORT
  [lagless_tpc]=$TPC_PORT [lagless_optimistic]=$OPTIMISTIC_PORT
  [lagless_replay]=$REPLAY_PORT [direct_socket]=$BASE_PORT [lagless_socket]=$SOCKET_PORT
  [lagless_socket_tcp]=$SOCKET_PORT [lagless_socket_tpc]=$SOCKET_TPC_PORT
  [haproxy_socket]=$HAPROXY_PORT)
declare -A PID=([direct]="" [lagless]=$PROXY_PID [lagless_gtid_wait]=$PROXY_PID [haproxy]=$HAPROXY_PID
  [lagless_nomux]=$NOMUX_PID [lagless_pinned]=$PINNED_PID
  [lagless_tpc]=$TPC_PID [lagless_optimistic]=$OPTIMISTIC_PID
  [lagless_replay]=$REPLAY_PID [direct_socket]="" [lagless_socket]=$SOCKET_PID
  [lagless_socket_tcp]=$SOCKET_PID [lagless_socket_tpc]=$SOCKET_TPC_PID
  [haproxy_socket]=$HAPROXY_PID)
declare -A USR=([direct]=$APP_USER [lagless]=$APP_USER [lagless_gtid_wait]=$GW_USER
  [haproxy]=$APP_USER [lagless_nomux]=$APP_USER [lagless_pinned]=$APP_USER
  [lagless_tpc]=$APP_USER [lagless_optimistic]=$APP_USER
  [lagless_replay]=$APP_USER [direct_socket]=$APP_USER [lagless_socket]=$APP_USER
  [lagless_socket_tcp]=$APP_USER [lagless_socket_tpc]=$APP_USER [haproxy_socket]=$APP_USER)
# How sysbench reaches each target: TCP to PORT, or a Unix socket (host localhost: with an IP
# the client library would use TCP and ignore the socket).
declare -A SB_CONN
for t in "${!PORT[@]}"; do SB_CONN[$t]="--mysql-host=$HOST --mysql-port=${PORT[$t]}"; done
SB_CONN[direct_socket]="--mysql-host=localhost --mysql-socket=$PRIMARY_SOCKET"
SB_CONN[lagless_socket]="--mysql-host=localhost --mysql-socket=$LAGLESS_SOCKET"
SB_CONN[lagless_socket_tpc]="--mysql-host=localhost --mysql-socket=$LAGLESS_TPC_SOCKET"
SB_CONN[haproxy_socket]="--mysql-host=localhost --mysql-socket=$HAPROXY_SOCKET"
read -r -a TARGET_LIST <<<"$TARGETS"
ALL_TARGETS=("${TARGET_LIST[@]}")
if [[ -n $GW_USER && " $TARGETS " == *" lagless "* && " $TESTS " == *" oltp_read_write"* ]]; then
  ALL_TARGETS+=(lagless_gtid_wait)
fi

# The targets of one test: TARGETS, and lagless_gtid_wait right after lagless for read/write.
targets_for() {
  local t out=()
  for t in "${TARGET_LIST[@]}"; do
    out+=("$t")
    if [ -n "$GW_USER" ] && [ "$t" = lagless ] && [[ $1 == oltp_read_write* ]]; then
      out+=(lagless_gtid_wait)
    fi
  done
  echo "${out[@]}"
}

for t in "${ALL_TARGETS[@]}"; do
  mariadb --no-defaults -h"$HOST" -P"${PORT[$t]}" -u"${USR[$t]}" -p"$APP_PASSWORD" sbtest \
    -N -e 'SELECT COUNT(*) FROM sbtest1' >/dev/null 2>"$WORK/check-$t.log" \
    || { cat "$WORK/check-$t.log" >&2; die "cannot query sbtest through $t (port ${PORT[$t]})"; }
done

# utime+stime of a process (all its threads), in clock ticks.
cpu_ticks() {
  local line rest
  local -a f
  read -r line <"/proc/$1/stat"
  rest=${line##*) }           # fields from 3 (state) on; the name may contain spaces
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))    # fields 14 and 15
}
# utime alone (user space: the proxy's own code and libc, not the kernel's TCP work).
user_ticks() {
  local line rest
  local -a f
  read -r line <"/proc/$1/stat"
  rest=${line##*) }
  read -r -a f <<<"$rest"
  echo "${f[11]}"
}
# utime+stime of the three mariadbd, summed.
servers_ticks() {
  local s pid sum=0
  for s in "${SERVERS[@]}"; do
    read -r _ _ pid <<<"$s"
    sum=$((sum + $(cpu_ticks "$pid")))
  done
  echo "$sum"
}
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# "name=reads ..." per server from a Lagless's SHOW LAGLESS BACKENDS (empty on failure).
lagless_reads() { # port
  mariadb --no-defaults -h"$HOST" -P"$1" -u"$APP_USER" -p"$APP_PASSWORD" --batch \
    -e 'SHOW LAGLESS BACKENDS' 2>/dev/null | python3 -c '
import sys
rows = [l.rstrip("\n").split("\t") for l in sys.stdin]
i, j = rows[0].index("server"), rows[0].index("reads")
print(" ".join(f"{r[i]}={r[j]}" for r in rows[1:]))' 2>/dev/null || true
}
# Reads per server between two lagless_reads outputs: "name=delta,...".
reads_delta() { # before after
  python3 -c '
import sys
b = dict(kv.split("=") for kv in sys.argv[1].split())
a = dict(kv.split("=") for kv in sys.argv[2].split())
print(",".join(f"{k}={int(v) - int(b.get(k, 0))}" for k, v in a.items()))' "$1" "$2" 2>/dev/null || true
}
# A proxy's established connections to the servers, sampled until killed; the peak goes to
# the file. (Counted from the proxy's side: the servers' own counters would also count the
# other proxies' idle pooled connections.)
# Over TCP: to the servers' ports. Over Unix sockets: the proxy's ends whose peer is a server's
# end, i.e. a socket bound to a server's socket path (ss shows the peer's inode).
sample_backend_conns() { # pid out-file
  local n u max=0
  while true; do
    n=$(ss -Htnp state established "( dport >= :$BASE_PORT and dport <= :$((BASE_PORT + REPLICAS)) )" \
      2>/dev/null | grep -c "pid=$1,") || true
    u=$(ss -Hxp state established 2>/dev/null | awk -v pid="pid=$1," -v socks="$SERVER_SOCKETS" '
      BEGIN { k = split(socks, a, " "); for (i = 1; i <= k; i++) server[a[i]] = 1 }
      { line[NR] = $0; peer[NR] = $7; if ($4 in server) theirs[$5] = 1 }
      END { c = 0; for (i = 1; i <= NR; i++) if (index(line[i], pid) && (peer[i] in theirs)) c++; print c }') || true
    n=$((${n:-0} + ${u:-0}))
    [ "$n" -le "$max" ] || { max=$n; echo "$max" >"$2"; }
    sleep 0.5
  done
}

# TEST+OPT+OPT2=V → the sysbench test name and its extra options.
sb_test_args() {
  local spec=$1 opt
  local -a parts
  IFS=+ read -r -a parts <<<"$spec"
  echo "${parts[0]}"
  for opt in "${parts[@]:1}"; do
    if [[ $opt == *=* ]]; then echo "--$opt"; else echo "--$opt=on"; fi
    [ "$opt" != skip_trx ] || echo "--mysql-ignore-errors=1213,1020,1205,1062"
  done
}

NOFILE_NOW=$(ulimit -n)

# --- runs --------------------------------------------------------------------------------------
export BENCH_DATE=$DATE BENCH_HAPROXY=$HAPROXY BENCH_MARIADB_VERSION=$MARIADB_VERSION \
  BENCH_TESTS="$TESTS" BENCH_THREADS="$THREADS" BENCH_DURATION=$DURATION BENCH_ROUNDS=$ROUNDS \
  BENCH_WARMUP=$WARMUP BENCH_TABLES=$TABLES BENCH_TABLE_SIZE=$TABLE_SIZE BENCH_BASE_PORT=$BASE_PORT \
  BENCH_LAGLESS_PORT=$LAGLESS_PORT BENCH_HAPROXY_PORT=$HAPROXY_PORT BENCH_NOMUX_PORT=$NOMUX_PORT BENCH_PINNED_PORT=$PINNED_PORT BENCH_TPC_PORT=$TPC_PORT BENCH_OPTIMISTIC_PORT=$OPTIMISTIC_PORT BENCH_REPLAY_PORT=$REPLAY_PORT BENCH_SOCKET_PORT=$SOCKET_PORT BENCH_SOCKET_TPC_PORT=$SOCKET_TPC_PORT BENCH_TPC_PIN=$TPC_PIN BENCH_PS_MODES="$PS_MODES" \
  BENCH_TARGETS="${ALL_TARGETS[*]}" BENCH_CONSISTENCY=$LAGLESS_CONSISTENCY \
  BENCH_GTID_WAIT_MS=$GTID_WAIT_MS BENCH_CPU_QUOTA=$CPU_QUOTA BENCH_QUOTA_TEST=$QUOTA_TEST \
  BENCH_QUOTA_THREADS="$QUOTA_THREADS" BENCH_QUOTA_PS_MODE=$QUOTA_PS_MODE BENCH_CONNECT=$CONNECT \
  BENCH_IDLE=$IDLE BENCH_SERVER_LIMITS="$SERVER_LIMITS" \
  BENCH_LAGLESS_MAX_CONNECTIONS=$LAGLESS_MAX_CONNECTIONS BENCH_NOFILE="$NOFILE_NOW" \
  BENCH_POOL_TOML="$POOL_TOML" BENCH_POOL_MAX_PER_SERVER=$POOL_MAX_PER_SERVER \
  BENCH_LAGLESS_BIN="$LAGLESS"
python3 scripts/bench/report.py meta >"$WORK/meta.json"

if [ "$WARMUP" -gt 0 ]; then
  log "warm-up: ${WARMUP} s per target"
  for t in "${ALL_TARGETS[@]}"; do
    # shellcheck disable=SC2086 # SB_CONN holds words without spaces
    sysbench oltp_read_only "${sb_common[@]}" --mysql-user="${USR[$t]}" ${SB_CONN[$t]} \
      --threads=4 --time="$WARMUP" run >"$WORK/logs/warmup-$t.log" 2>&1 \
      || { cat "$WORK/logs/warmup-$t.log" >&2; die "warm-up through $t failed"; }
  done
fi

RUNS=$WORK/runs.tsv
: >"$RUNS"
n=0
total=0
# One sysbench run against one target, recorded in $RUNS.
run_one() { # phase round test-spec ps-mode threads target
  local phase=$1 round=$2 spec=$3 ps=$4 threads=$5 t=$6
  local out pid before="" after="" hwm="" start end code=0 wall qps conns="" sampler=""
  local reads_before="" reads="" sv_before sv_after ubefore="" uafter=""
  local -a sb
  mapfile -t sb < <(sb_test_args "$spec")
  n=$((n + 1))
  out=$WORK/logs/$phase-r$round-$spec-$ps-$threads-$t.log
  pid=${PID[$t]}
  if [ -n "$pid" ]; then
    before=$(cpu_ticks "$pid")
    ubefore=$(user_ticks "$pid")
    : >"$out.conns"
    sample_backend_conns "$pid" "$out.conns" &
    sampler=$!
  fi
  [[ $t != lagless* ]] || reads_before=$(lagless_reads "${PORT[$t]}")
  sv_before=$(servers_ticks)
  start=$(date +%s.%N)
  # shellcheck disable=SC2086 # SB_CONN holds words without spaces
  sysbench "${sb[0]}" "${sb[@]:1}" "${sb_common[@]}" --mysql-user="${USR[$t]}" \
    ${SB_CONN[$t]} --threads="$threads" --db-ps-mode="$ps" \
    --time="$DURATION" --report-interval=0 --percentile=95 --histogram=on run \
    >"$out" 2>&1 || code=$?
  end=$(date +%s.%N)
  sv_after=$(servers_ticks)
  if [ -n "$pid" ]; then
    kill -0 "$pid" 2>/dev/null || die "$t (pid $pid) died during $out; see $WORK/*.log"
    after=$(cpu_ticks "$pid")
    uafter=$(user_ticks "$pid")
    hwm=$(peak_rss_kb "$pid")
  fi
  if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    conns=$(cat "$out.conns")
  fi
  [ -z "$reads_before" ] || reads=$(reads_delta "$reads_before" "$(lagless_reads "${PORT[$t]}")")
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$round" "$spec" "$ps" \
    "$threads" "$t" "${PORT[$t]}" "$out" "$code" "$wall" "$before" "$after" "$hwm" "$conns" \
    "$reads" "$((sv_after - sv_before))" "${uafter:+$((uafter - ubefore))}" >>"$RUNS"
  qps=$(sed -n 's/^ *queries: *[0-9]* *(\([0-9.]*\) per sec.*/\1/p' "$out")
  log "[$n/$total] $phase round $round $spec ps=$ps $threads threads $t: ${qps:-FAILED (exit $code, $out)} qps"
}

for spec in $TESTS; do
  read -r -a tt <<<"$(targets_for "$spec")"
  total=$((total + ROUNDS * $(wc -w <<<"$PS_MODES") * $(wc -w <<<"$THREADS") * ${#tt[@]}))
done
# The quota phase: direct and lagless always, lagless_nomux, _tpc and _optimistic when listed.
QUOTA_TARGETS=(direct lagless)
[[ " $TARGETS " != *" lagless_nomux "* ]] || QUOTA_TARGETS+=(lagless_nomux)
[[ " $TARGETS " != *" lagless_tpc "* ]] || QUOTA_TARGETS+=(lagless_tpc)
[[ " $TARGETS " != *" lagless_optimistic "* ]] || QUOTA_TARGETS+=(lagless_optimistic)
if [ -n "$CPU_QUOTA" ]; then
  total=$((total + ROUNDS * $(wc -w <<<"$QUOTA_THREADS") * ${#QUOTA_TARGETS[@]}))
fi
log "$total sysbench runs of $DURATION s (about $((total * (DURATION + 1) / 60 + 1)) min)"

# --- 1. the matrix -----------------------------------------------------------------------------
for round in $(seq "$ROUNDS"); do
  for spec in $TESTS; do
    for ps in $PS_MODES; do
      for threads in $THREADS; do
        for t in $(targets_for "$spec"); do
          run_one main "$round" "$spec" "$ps" "$threads" "$t"
        done
      done
    done
  done
done

# --- 2. read scaling with CPU-quota'd servers -------------------------------------------------
QUOTA_TSV=$WORK/quota.tsv
if [ -n "$CPU_QUOTA" ]; then
  : >"$QUOTA_TSV"
  if [ "$CG_VERSION" = 2 ] && ! grep -qw cpu "$CG_ROOT/cgroup.subtree_control"; then
    echo +cpu >"$CG_ROOT/cgroup.subtree_control" || die "cannot enable the cpu controller in $CG_ROOT"
    CG_ENABLED_CPU=1
  fi
  for s in "${SERVERS[@]}"; do
    read -r name port pid <<<"$s"
    if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != mariadbd ]; then
      die "no mariadbd pid for $name in $WORK/status.json"
    fi
    if [ "$CG_VERSION" = 1 ]; then
      orig=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3; exit}' "/proc/$pid/cgroup")
    else
      orig=$(awk -F: '$1 == "0" {print $3; exit}' "/proc/$pid/cgroup")
    fi
    d=$CG_ROOT/lagless-bench-$BASE_PORT-$name
    mkdir "$d" || die "cannot create cgroup $d"
    CG_DIRS+=("$d")
    if [ "$CG_VERSION" = 1 ]; then
      echo "$CG_PERIOD" >"$d/cpu.cfs_period_us"
      echo "$CG_QUOTA" >"$d/cpu.cfs_quota_us"
    else
      echo "$CG_QUOTA $CG_PERIOD" >"$d/cpu.max"
    fi
    CG_MOVES+=("$pid $CG_ROOT${orig%/}")
    echo "$pid" >"$d/cgroup.procs" || die "cannot move $name (pid $pid) into $d"
    log "$name (pid $pid) in $d: $CPU_QUOTA core ($CG_QUOTA/$CG_PERIOD µs)"
  done
  for round in $(seq "$ROUNDS"); do
    for threads in $QUOTA_THREADS; do
      for t in "${QUOTA_TARGETS[@]}"; do
        run_one quota "$round" "$QUOTA_TEST" "$QUOTA_PS_MODE" "$threads" "$t"
      done
    done
  done
  for s in "${SERVERS[@]}"; do
    read -r name port pid <<<"$s"
    d=$CG_ROOT/lagless-bench-$BASE_PORT-$name
    # v1: nr_periods nr_throttled throttled_time (ns); v2: ... nr_throttled throttled_usec.
    thr=$(awk '$1 == "nr_periods" {p = $2} $1 == "nr_throttled" {n = $2}
      $1 == "throttled_time" {ms = $2 / 1e6} $1 == "throttled_usec" {ms = $2 / 1e3}
      END {printf "%d\t%d\t%.0f", p, n, ms}' "$d/cpu.stat")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$pid" "$d" "$CG_QUOTA" "$CG_PERIOD" "$thr" >>"$QUOTA_TSV"
  done
  cg_release
  log "servers moved back out of the quota cgroups"
fi

# --- 3. connection set-up latency -------------------------------------------------------------
CONN_JSONS=()
if [ "$CONNECT" -gt 0 ]; then
  for round in $(seq "$ROUNDS"); do
    for t in "${TARGET_LIST[@]}"; do
      cj=$WORK/connect-r$round-$t.json
      log "connect round $round: $CONNECT sequential connections through $t"
      "$PY" scripts/bench/conn.py connect --host "$HOST" --port "${PORT[$t]}" --user "${USR[$t]}" \
        --password "$APP_PASSWORD" --label "$t" --round "$round" --count "$CONNECT" \
        --pid "${PID[$t]:-0}" --out "$cj" 2>>"$WORK/connect.log" \
        || die "conn.py connect through $t failed; see $WORK/connect.log"
      tail -n 1 "$WORK/connect.log" >&2
      CONN_JSONS+=(--conn "$cj")
    done
  done
fi

# --- 4. idle connections to Lagless ------------------------------------------------------------
if [ "$IDLE" -gt 0 ]; then
  log "idle: $IDLE client connections to lagless (pid $PROXY_PID), held $IDLE_HOLD s"
  "$PY" scripts/bench/conn.py idle --host "$HOST" --port "$LAGLESS_PORT" --user "$APP_USER" \
    --password "$APP_PASSWORD" --label lagless --count "$IDLE" --pid "$PROXY_PID" \
    --status "$WORK/status.json" --hold "$IDLE_HOLD" --out "$WORK/idle.json" \
    2> >(tee "$WORK/idle.log" >&2) || die "conn.py idle failed; see $WORK/idle.log"
  kill -0 "$PROXY_PID" 2>/dev/null || die "lagless (pid $PROXY_PID) died during the idle test; see $WORK/lagless.log"
  CONN_JSONS+=(--idle "$WORK/idle.json")
fi

# --- report ------------------------------------------------------------------------------------
extra=()
[ -z "$CPU_QUOTA" ] || extra+=(--quota "$QUOTA_TSV")
status=0
python3 scripts/bench/report.py report "$RUNS" "$WORK/meta.json" \
  "results/bench-$DATE.md" "results/bench-$DATE.json" \
  ${extra[@]+"${extra[@]}"} ${CONN_JSONS[@]+"${CONN_JSONS[@]}"} || status=$?
log "wrote results/bench-$DATE.md and results/bench-$DATE.json (logs in $WORK)"
exit "$status"
