#!/usr/bin/env bash
# The test command: full suite (PostgreSQL + Redis when DATABASE_URL / Redis are there), then
# the SQLite + filesystem-broker smoke subset that proves the embedded default still works.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUIREMENTS=requirements-dev.txt source scripts/setup-env.sh
export HISTOCROWD_TEST_DATA="${HISTOCROWD_TEST_DATA:-$(cd .. && pwd)/shared/data}"
mkdir -p test-output
python -m pytest "$@"
if [ -n "${DATABASE_URL:-}" ] && [ -z "${SKIP_SMOKE:-}" ]; then
  echo "== smoke subset on the embedded default (SQLite + filesystem broker) =="
  env -u DATABASE_URL TEST_BROKER_URL="filesystem://" python -m pytest -m smoke -q
fi
