"""What every database-touching Celery task shares: retries on a lost database connection, and
the attempt cap counted in the database (RELIABILITY.md).

Use it for any new task (slides, annotation and learning all may import ``config``)::

    from celery import shared_task
    from config.tasks import DatabaseTask

    @shared_task(name="learning.train_chunk", base=DatabaseTask)
    def train_chunk(run_id: int) -> None: ...

and, in the service, claim the attempt before the work::

    if not attempt_claim(TrainingRun.objects.filter(pk=run_id), field="attempts"):
        ...  # mark it FAILED with a reason: its worker died every time

Two different faults, two different counters:

- a dropped connection (PostgreSQL restart or failover, ``pg_terminate_backend``, an idle
  timeout) raises ``OperationalError``/``InterfaceError``: the task is retried with exponential
  backoff (up to 1, 2, 4 ... 60 s, full jitter, at most ``DATABASE_RETRY_MAX`` times: a
  database away for up to about 3 minutes) on a fresh connection. A retry that finds the
  database still down fails before claiming, so only a drop mid-task costs an attempt;
- a worker that dies under the task (SIGKILL, OOM, a crashing reader) is redelivered by the
  broker (``task_acks_late`` + ``task_reject_on_worker_lost``); the attempts claimed in the
  database stop a task that kills its worker every time after ``CELERY_TASK_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.contrib.django.task import DjangoTask
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.db.models import F, QuerySet

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_MAX = 8
DATABASE_RETRY_BACKOFF_MAX = 60

#: The same options as keyword arguments, for a task that needs its own base class.
DATABASE_RETRY_OPTIONS: dict[str, Any] = {
    "autoretry_for": DATABASE_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": DATABASE_RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    "max_retries": DATABASE_RETRY_MAX,
}


class DatabaseTask(DjangoTask):
    """A task retried with backoff when its database connection is lost mid-task.

    A ``DjangoTask`` (Celery's default here), so ``delay_on_commit`` stays available.
    """

    autoretry_for = DATABASE_RETRY_OPTIONS["autoretry_for"]
    retry_backoff = DATABASE_RETRY_OPTIONS["retry_backoff"]
    retry_backoff_max = DATABASE_RETRY_OPTIONS["retry_backoff_max"]
    retry_jitter = DATABASE_RETRY_OPTIONS["retry_jitter"]
    max_retries = DATABASE_RETRY_OPTIONS["max_retries"]

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        # The dead connection must not be handed to the retry: drop every connection that
        # saw an error and no longer answers (Django reconnects on next use).
        close_old_connections()
        exc = kwargs.get("exc")
        if exc is not None:
            logger.warning("%s[%s] retries after a database error: %s", self.name,
                           self.request.id, exc)  # fmt: skip
        return super().retry(*args, **kwargs)


def attempt_claim(queryset: QuerySet[Any], *, field: str = "attempts", **also: Any) -> bool:
    """Count one more attempt on the row(s) of ``queryset`` unless the cap is reached.

    One conditional UPDATE, so two deliveries of one task can never both take the last attempt.
    ``also`` are further fields to set in the same UPDATE (e.g. ``started_at``). Returns whether
    the attempt was claimed; False means the cap is reached (or the row is gone / not eligible).
    """
    limit = settings.CELERY_TASK_MAX_ATTEMPTS
    claimed = queryset.filter(**{f"{field}__lt": limit}).update(**{field: F(field) + 1}, **also)
    return bool(claimed)
