#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, format and lint checks, unit and integration
# tests against real MariaDB sandboxes, and a short bounded fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export LAGLESS_PYTHON="$PWD/.venv/bin/python"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The stable-toolchain libFuzzer build is the quicker one; nightly adds AddressSanitizer.
FUZZ_PATH=${FUZZ_PATH:-stable} scripts/fuzz.sh 30
