#!/usr/bin/env bash
# Installs what Lagless needs on a Debian 12 machine, and nothing that is already there.
#   scripts/setup.sh demo   MariaDB server and client (for the sandbox)
#   scripts/setup.sh test   also sysbench and a Python venv (.venv) with PyMySQL and SQLAlchemy
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-demo}

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have mariadbd || missing+=(mariadb-server)
have mariadb || missing+=(mariadb-client)
if [ "$what" = test ]; then
  have sysbench || missing+=(sysbench)
  python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Lagless needs: ${missing[*]}. Install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  # policy-rc.d on these images keeps the packaged service from starting; we never use it.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "Lagless is built with cargo (Rust); install Rust from rustup first" >&2
  exit 1
fi

if [ "$what" = test ]; then
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import pymysql, sqlalchemy, cryptography' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  fi
fi
