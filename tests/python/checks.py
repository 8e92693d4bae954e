"""The runner the Python client scripts share: `@check` registers a function taking the
parsed arguments (--host, --port, and --socket: a Unix socket to use instead); `main(prefix)` runs them all, prints one line per check and
a closing 'N passed, N failed' line, and exits 1 if any failed."""

import argparse
import sys
import traceback

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def main(prefix=""):
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--socket", help="connect over this Unix socket instead of TCP")
    args = ap.parse_args()
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn(args)
            print(f"ok   {fn.__name__}")
            passed += 1
        except Exception:  # noqa: BLE001 - report every failing check
            print(f"FAIL {fn.__name__}")
            traceback.print_exc(file=sys.stdout)
            failed += 1
    print(f"{prefix}{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
