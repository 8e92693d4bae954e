#!/usr/bin/env bash
# Instructions per statement on the proxy's forwarding path, counted by valgrind's callgrind
# (instruction counts are stable on a noisy machine; wall times are not). Not a test.
#
#   scripts/callgrind.sh                 # point select and 100-row result, 2000 statements each
#   N=5000 ONLY=point scripts/callgrind.sh
#
# It runs the `forwarding` benchmark of lagless-proxy (crates/proxy/benches/forwarding.rs): the
# real session engine (Engine::handle: intercept, classify, route, pool checkout, session sync,
# relay, record, release) on a current-thread tokio runtime, a client and a fake MariaDB backend
# on loopback TCP that replays canned responses. Callgrind collects only inside
# `measured_window` (the N measured statements, after WARMUP), on the engine's thread, so the
# count covers Lagless's user-space work per statement including tokio's I/O driver, not the
# kernel nor the client and backend threads. Prints instructions per statement and the top
# inclusive and exclusive costs; the raw files stay in OUT for callgrind_annotate / kcachegrind.
#
# Environment (defaults): N=2000 WARMUP=200 ONLY="point range" OUT=results/callgrind TOP=30
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
WARMUP=${WARMUP:-200}
ONLY=${ONLY:-point range}
OUT=${OUT:-results/callgrind}
TOP=${TOP:-30}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
mkdir -p "$OUT"
bin=$(cargo bench -p lagless-proxy --bench forwarding --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the forwarding benchmark" >&2; exit 1; }
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
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
  echo "== $what: $best_ir instructions in $N statements = $((best_ir / N)) instructions/statement ($file)"
  grep -h "allocations/statement" "$OUT/$what.log" | sed 's/^/   /' || true
  # (|| true: head closes the pipe early)
  echo "-- top inclusive (under 99%, without the runtime's scaffolding)"
  { callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
    awk '/file:function/ {on=1; next} on && NF {p=$2; gsub(/[(%)]/, "", p); if (p + 0 < 99) print}' |
    grep -v 'tests/support/forwarding.rs\|/library/std/src/\|current_thread/mod.rs\|runtime/context' |
    head -"$TOP" | cut -c1-170; } || true
  echo "-- top exclusive"
  { callgrind_annotate "$file" 2>/dev/null | awk '/file:function/ {on=1; next} on && NF' |
    head -20 | cut -c1-170; } || true
done
