#!/usr/bin/env bash
# Starts the demo: a sandbox of real MariaDB servers (1 primary + 2 replicas) and Lagless in
# front of it on 127.0.0.1:6033 (user app, password lagless, database app). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo build --release --locked -p lagless
exec target/release/lagless demo "$@"
