"""Celery configuration: queues, routes and the reliability baseline of RELIABILITY.md.

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task whose worker dies is redelivered
  (measured: without the second, a SIGKILLed child ends in WorkerLostError, never rerun); each
  task caps its own attempts in the database so a poison task cannot loop.
- ``worker_prefetch_multiplier=1``: a long task does not hold others hostage in a prefetch buffer.
- hard time limit below the broker's visibility timeout, so a healthy task is never redelivered
  to a second worker while it still runs; long work runs as a chain of bounded tasks.
"""

from __future__ import annotations

from django.conf import settings
from kombu import Queue

from config.env import env_int

broker_url = settings.CELERY_BROKER_URL
broker_connection_retry_on_startup = True

if broker_url.startswith("filesystem://"):
    _broker_dir = settings.CELERY_BROKER_DIR
    for _sub in ("in", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    broker_transport_options = {
        # Without this the transport writes its broadcast exchange to ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    broker_transport_options = {
        "visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT,
        # kombu restores a dead worker's unacked messages only every interval (x throttle);
        # left at the defaults a killed task waited ~92 s (measured), so tests lower it.
        "unacked_restore_interval": settings.CELERY_UNACKED_RESTORE_INTERVAL,
        # ... and scans Redis only on every Nth of those sweeps (kombu's default 10); tests that
        # kill whole workers set both to 1 (a killed task came back in 11 s instead of ~92 s).
        "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10, minimum=1),
    }
    if settings.CELERY_REDIS_KEY_PREFIX:
        # Several deployments (or test sessions) can share one Redis without sharing queues.
        broker_transport_options["global_keyprefix"] = settings.CELERY_REDIS_KEY_PREFIX

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_time_limit = settings.CELERY_TASK_TIME_LIMIT
task_soft_time_limit = max(1, int(settings.CELERY_TASK_TIME_LIMIT * 0.9))
task_ignore_result = True
task_serializer = "json"
accept_content = ["json"]
worker_hijack_root_logger = False
worker_cancel_long_running_tasks_on_connection_loss = True

task_default_queue = "default"
task_queues = (Queue("default"), Queue("consensus"), Queue("gpu"))
task_routes = {
    "annotation.merge_*": {"queue": "consensus"},
    "learning.train_*": {"queue": "gpu"},
    "learning.score_*": {"queue": "gpu"},
    "learning.propose_*": {"queue": "gpu"},
}

# The round machine counts its quota from the database; this periodic check catches anything a
# lost message missed (run by ``celery worker -B`` in the demo, ``celery beat`` in production).
beat_schedule = {
    "learning-check-rounds": {"task": "learning.check_rounds", "schedule": 60.0},
}
