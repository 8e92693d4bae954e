#!/usr/bin/env bash
# How long `STOP SLAVE IO_THREAD` takes on a semi-sync replica of a hung (SIGSTOPped) primary,
# right after `KILL` of its IO thread, and with a pause between the two (what the failover
# does: crates/topology/src/failover/execute.rs, SEMI_SYNC_IO_EXIT_PAUSE). Run by hand:
#
#   scripts/semisync-stop.sh               # ROUNDS=5 PAUSES="0 0.025"
#
# Starts its own semi-sync sandbox (DIR=/tmp/lagless-semisync-stop, BASE_PORT=3760) and stops it
# at the end. Prints one line per stop: the pause in seconds and the STOP's duration in ms.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-5}
pauses=${PAUSES:-0 0.025}
dir=${DIR:-/tmp/lagless-semisync-stop}
base=${BASE_PORT:-3760}
bin=${LAGLESS_BIN:-target/release/lagless}
[ -x "$bin" ] || cargo build --release -p lagless >&2

"$bin" sandbox up --dir "$dir" --semi-sync --replicas 1 --base-port "$base" >/dev/null
primary_pid=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
print(next(s['pid'] for s in d['servers'] if s['role'].lower()=='primary'))" "$dir/sandbox.json")
replica=(mariadb -h127.0.0.1 -P$((base + 1)) -uroot -plagless-root -N)
cleanup() {
  kill -CONT "$primary_pid" 2>/dev/null || true
  "$bin" sandbox down --dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }

for pause in $pauses; do
  for _ in $(seq 1 "$rounds"); do
    "${replica[@]}" -e "SET GLOBAL rpl_semi_sync_slave_enabled = ON; START SLAVE"
    sleep 1
    kill -STOP "$primary_pid"
    sleep 0.5
    # As the failover does before its KILL.
    "${replica[@]}" -e "SET GLOBAL rpl_semi_sync_slave_enabled = OFF;
      SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = 1"
    id=$("${replica[@]}" -e "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'")
    sql="KILL $id;"
    [ "$pause" = 0 ] || sql+=" DO SLEEP($pause);"
    start=$(now_ms)
    "${replica[@]}" -e "$sql STOP SLAVE IO_THREAD"
    end=$(now_ms)
    kill -CONT "$primary_pid"
    # The pause is inside the measured statement list: subtract it.
    awk -v s="$start" -v e="$end" -v p="$pause" \
      'BEGIN {printf "pause %s s: KILL + STOP SLAVE IO_THREAD %.0f ms\n", p, e - s - p * 1000}'
    sleep 0.5
  done
done
