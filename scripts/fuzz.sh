#!/usr/bin/env bash
# A bounded fuzz run of the protocol decoders (crates/protocol/fuzz, target `decode`), cheap
# enough for CI: scripts/test.sh calls `scripts/fuzz.sh 30`.
#
#   scripts/fuzz.sh [SECONDS]      default 60; fuzzing time, not counting the build
#
# Exits non-zero when the fuzzer finds a panic, crash, hang or OOM (the input is saved under
# crates/protocol/fuzz/artifacts/decode/), zero otherwise. Paths, best first:
#   1. libFuzzer on nightly with AddressSanitizer  (when a nightly toolchain is installed)
#   2. libFuzzer on the default (stable) toolchain without sanitizer  (cargo fuzz run -s none)
#   3. the proptest no-panic properties of crates/protocol/tests/props.rs, repeated with new
#      random seeds for SECONDS (when cargo-fuzz cannot be installed or there is no C++ compiler
#      to build libFuzzer)
# FUZZ_PATH=nightly|stable|proptest forces one. cargo-fuzz is installed with
# `cargo install cargo-fuzz --locked` when missing. The corpus (kept between local runs) and
# crash artifacts stay in crates/protocol/fuzz/{corpus,artifacts} (gitignored there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

secs=${1:-60}
[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2; }
TARGET=decode
FUZZ_DIR=crates/protocol/fuzz
LOG=$ROOT/$FUZZ_DIR/target/fuzz-$TARGET.log
started=$(date +%s)

say() { echo "fuzz: $*" >&2; }
elapsed() { echo $(($(date +%s) - started)); }

has_nightly() {
  command -v rustup >/dev/null 2>&1 &&
    rustup toolchain list 2>/dev/null | grep -q '^nightly' &&
    cargo +nightly --version >/dev/null 2>&1
}

ensure_cargo_fuzz() {
  if cargo fuzz --version >/dev/null 2>&1; then
    return 0
  fi
  say "installing cargo-fuzz: cargo install cargo-fuzz --locked"
  local t0=$(date +%s)
  if cargo install cargo-fuzz --locked; then
    say "cargo-fuzz installed in $(($(date +%s) - t0)) s"
    return 0
  fi
  return 1
}

run_proptest() { # reason
  say "PATH: proptest fallback ($1): the no-panic properties of lagless-protocol for $secs s"
  # props.rs fixes its case count (256 per run), so PROPTEST_CASES may not change it: the loop,
  # with a fresh random seed each run, is what scales the search to SECONDS.
  export PROPTEST_CASES=${PROPTEST_CASES:-4096}
  local bin
  bin=$(cargo test -p lagless-protocol --test props --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable tests\/props\.rs (\(.*\))$/\1/p' | tail -n 1)
  case "$bin" in /*) ;; ?*) bin=$ROOT/$bin ;; esac
  [ -x "$bin" ] || { say "FAILED: cannot build the property tests"; exit 1; }
  local end=$(($(date +%s) + secs)) runs=0
  while [ "$(date +%s)" -lt "$end" ]; do
    # proptest saves a failing case under crates/protocol/proptest-regressions/.
    if ! (cd crates/protocol && "$bin" never_panic) >"$LOG.proptest" 2>&1; then
      cat "$LOG.proptest" >&2
      say "FAILED: a parser panicked (proptest, run $((runs + 1))); see the output above"
      exit 1
    fi
    runs=$((runs + 1))
  done
  say "ok: proptest fallback, $runs runs of the no-panic properties, no panic (total $(elapsed) s)"
  exit 0
}

# --- choose the path ---------------------------------------------------------------------------
path=${FUZZ_PATH:-}
case "$path" in
  "" | nightly | stable | proptest) ;;
  *) say "FUZZ_PATH must be nightly, stable or proptest"; exit 2 ;;
esac
mkdir -p "$FUZZ_DIR/target"
[ "$path" != proptest ] || run_proptest "FUZZ_PATH=proptest"
if ! command -v c++ >/dev/null 2>&1; then
  run_proptest "no C++ compiler to build libFuzzer (apt-get install g++)"
fi
ensure_cargo_fuzz || run_proptest "cargo-fuzz is not installed and could not be installed"
if [ -z "$path" ]; then
  if has_nightly; then path=nightly; else path=stable; fi
fi
if [ "$path" = nightly ] && ! has_nightly; then
  say "FUZZ_PATH=nightly but no nightly toolchain is installed"
  exit 2
fi

# The toolchain and cargo-fuzz flags of a path; -a: debug assertions (overflow checks too).
set_flags() {
  if [ "$1" = nightly ]; then
    tc=+nightly flags=(-a)
  else
    tc="" flags=(-s none -a) # the default toolchain, whatever its name
  fi
}

build() {
  set_flags "$1"
  (cd crates/protocol && cargo ${tc:+"$tc"} fuzz build "${flags[@]}" "$TARGET")
}

say "building the fuzz target ($path)"
if ! build "$path"; then
  if [ "$path" = nightly ] && [ -z "${FUZZ_PATH:-}" ]; then
    say "the nightly build failed; trying stable without sanitizer"
    path=stable
    build stable || { say "FAILED: the fuzz target does not build"; exit 1; }
  else
    say "FAILED: the fuzz target does not build"
    exit 1
  fi
fi
built=$(elapsed)
if [ "$path" = nightly ]; then
  say "PATH: libFuzzer, nightly, AddressSanitizer, debug assertions; $secs s (build took $built s)"
else
  say "PATH: libFuzzer, stable, no sanitizer (-s none), debug assertions; $secs s (build took $built s)"
fi

# --- fuzz --------------------------------------------------------------------------------------
set_flags "$path"
mkdir -p "$FUZZ_DIR/corpus/$TARGET" "$FUZZ_DIR/artifacts/$TARGET"
code=0
# -max_total_time bounds the fuzzing; -timeout=10 turns a hang on one input into a failure;
# timeout(1) is the backstop should the harness itself not stop.
(cd crates/protocol && timeout -k 10 $((secs + 120)) cargo ${tc:+"$tc"} fuzz run "${flags[@]}" "$TARGET" -- \
  -max_total_time="$secs" -timeout=10 -print_final_stats=1) >"$LOG" 2>&1 || code=$?

if [ "$code" -ne 0 ]; then
  tail -n 80 "$LOG" >&2
  if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
    say "FAILED: the fuzzer did not stop within $((secs + 120)) s (full log: $LOG)"
  else
    say "FAILED: the fuzzer found a failing input (panic, crash, hang or out-of-memory; exit $code); the input is in $FUZZ_DIR/artifacts/$TARGET/"
    say "reproduce: (cd crates/protocol && cargo ${tc:+$tc }fuzz run ${flags[*]} $TARGET <artifact>)"
    say "full log: $LOG"
  fi
  exit 1
fi
runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 inputs in \2 s/p' "$LOG" | tail -n 1)
corpus=$(find "$FUZZ_DIR/corpus/$TARGET" -type f | wc -l)
say "ok: no crash; ${runs:-? inputs}; corpus $corpus inputs; total $(elapsed) s including the build"
