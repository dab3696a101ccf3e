#!/usr/bin/env bash
# The main job on a fresh machine: install, migrate, load the demo campaign, start web + worker.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh  # venv + Python packages + npm packages
mkdir -p var/log var/slides

# Broker: a local Redis if one answers, else one of our own with AOF, else Celery's filesystem
# transport (DESIGN.md: embedded default). Settings read only the environment.
if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  export CELERY_BROKER_URL="redis://127.0.0.1:6379/0"
elif command -v redis-server >/dev/null 2>&1; then
  mkdir -p var/redis
  redis-server --port 6390 --bind 127.0.0.1 --appendonly yes --maxmemory-policy noeviction \
    --dir "$PWD/var/redis" --daemonize yes --logfile "$PWD/var/log/redis.log"
  export CELERY_BROKER_URL="redis://127.0.0.1:6390/0"
else
  export CELERY_BROKER_URL="filesystem://"
fi
shared="$(cd .. && pwd)/shared/data"
if [ -d "$shared/slides" ]; then export SLIDE_ROOTS="$PWD/var/slides:$shared"; fi

python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0

python -m celery -A config worker -B -s var/celerybeat-schedule -Q default,consensus,gpu -c 2 -l info >var/log/worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
echo "Celery worker started (pid $worker, broker $CELERY_BROKER_URL, log var/log/worker.log)"

if [ -d "$shared/slides" ]; then
  python manage.py load_demo --with-shared-data "$shared"
else
  python manage.py load_demo
fi

port="${PORT:-8000}"
echo
echo "histocrowd is running at http://127.0.0.1:${port}/  (Ctrl-C stops web and worker)"
echo "API docs: http://127.0.0.1:${port}/api/docs/"
python manage.py runserver "127.0.0.1:${port}" --noreload
