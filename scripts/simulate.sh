#!/usr/bin/env bash
# A campaign with a simulated crowd through the live system: manage.py simulate_campaign starts
# its own web server (gunicorn, free loopback port) and Celery worker on the same database and
# broker, and writes its report under var/reports/<timestamp>/. Arguments go to the command
# (default profile --quick; make simulate-ci runs --ci).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
# Without DATABASE_URL the simulation gets an SQLite database of its own under var/simulation:
# the users and projects it makes do not belong in the demo's database.
if [ -z "${DATABASE_URL:-}" ]; then
  export HISTOCROWD_VAR_DIR="${HISTOCROWD_VAR_DIR:-$PWD/var/simulation}"
  export SLIDE_ROOTS="${SLIDE_ROOTS:-$HISTOCROWD_VAR_DIR/slides}"
  mkdir -p "$SLIDE_ROOTS"
fi
# Broker: a local Redis under a key prefix of this run (a demo's worker on the same Redis never
# takes its tasks), else Celery's filesystem transport under the var directory.
own_prefix=""
if [ -z "${CELERY_BROKER_URL:-}" ]; then
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    export CELERY_BROKER_URL="redis://127.0.0.1:6379/0"
    if [ -z "${CELERY_REDIS_KEY_PREFIX:-}" ]; then
      own_prefix="simulation-$$:"
      export CELERY_REDIS_KEY_PREFIX="$own_prefix"
      # Leave no keys of this run behind (kombu keeps its bindings after the queues empty).
      trap 'redis-cli -h 127.0.0.1 -p 6379 -n 0 --scan --pattern "${own_prefix}*" | xargs -r redis-cli -h 127.0.0.1 -p 6379 -n 0 del >/dev/null' EXIT
    fi
  else
    export CELERY_BROKER_URL="filesystem://"
  fi
fi
python manage.py migrate --noinput -v 0
python manage.py simulate_campaign "$@"
