"""Nightly schema fuzzing: many more schemathesis cases per operation, negative data included.

    python bench/schemathesis_nightly.py [--examples 200] [--timeout 3000]

Runs tests/security/test_schema_fuzz.py (in process, through the WSGI app, one token per role
and a non-member) with ``SCHEMA_FUZZ_EXAMPLES`` and ``SCHEMA_FUZZ_NEGATIVE=1``, prints the
outcome and writes bench/results/schemathesis-<date>.json. Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--timeout", type=int, default=3000, help="seconds for the whole run")
    parser.add_argument("--positive-only", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ)
    env.update(
        SCHEMA_FUZZ_EXAMPLES=str(args.examples),
        SCHEMA_FUZZ_NEGATIVE="0" if args.positive_only else "1",
        SCHEMA_FUZZ_TIMEOUT=str(args.timeout),
        LOG_LEVEL="ERROR",  # 404/401 warnings by the thousand would bury the report
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:logging",
            "tests/security/test_schema_fuzz.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    print(proc.stdout[-20000:])
    print(proc.stderr[-5000:], file=sys.stderr)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "examples_per_operation": args.examples,
        "negative": not args.positive_only,
        "seconds": round(seconds, 1),
        "passed": proc.returncode == 0,
        "tail": proc.stdout[-4000:],
    }
    out = REPO / "bench" / "results" / f"schemathesis-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{'passed' if result['passed'] else 'FAILED'} in {seconds:.0f} s -> {out}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
