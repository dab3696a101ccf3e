"""Celery tasks of the learning app: thin wrappers that load by id and call one service.

Queues: ``learning.train_*``, ``learning.score_*`` and ``learning.propose_*`` go to ``gpu``
(config/celeryconfig.py); the round checks run on ``default``. A lost database connection is
retried with backoff (``config.tasks.DatabaseTask``); any other error is retried within the
attempt cap, then the round stops with the reason and a retry button.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from annotation.models import CampaignState, Project
from config.tasks import DATABASE_ERRORS, DatabaseTask
from learning.models import RoundState
from learning.services import rounds as round_services
from learning.services.proposals import proposals_make
from learning.services.scoring import scoring_chunk, scoring_requeue_stalled
from learning.services.training_runs import (
    ChunkOutcome,
    training_run_chunk,
    training_run_fail,
    training_run_requeue_stalled,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _retry_or_give_up(task: Task, exc: BaseException, give_up: Callable[[str], None]) -> None:
    """Retry with exponential backoff while attempts remain; else record the reason."""
    if task.request.retries + 1 < settings.CELERY_TASK_MAX_ATTEMPTS:
        raise task.retry(exc=exc, countdown=2 ** (task.request.retries + 1))
    give_up(f"{type(exc).__name__}: {exc}")


@shared_task(name="learning.region_accepted", bind=True, base=DatabaseTask)
def region_accepted(self: Task, project_id: int) -> int | None:
    """A region of the project may have an accepted answer: start training if the quota is met."""
    started = round_services.round_check(project_id=project_id)
    return started.pk if started is not None else None


@shared_task(name="learning.check_rounds", base=DatabaseTask)
def check_rounds() -> dict[str, int]:
    """Periodic: catch any missed quota and re-queue steps whose messages were lost."""
    started = 0
    for project_id in Project.objects.filter(state=CampaignState.OPEN).values_list("pk", flat=True):
        started += round_services.round_check(project_id=project_id) is not None
    stale_after = settings.CELERY_TASK_TIME_LIMIT + 60
    return {
        "rounds_started": started,
        "chunks_requeued": training_run_requeue_stalled(),
        "steps_requeued": scoring_requeue_stalled(older_than_seconds=stale_after),
    }


@shared_task(name="learning.train_chunk", bind=True, base=DatabaseTask, max_retries=25)
def train_chunk(self: Task, run_id: int, chunk: int) -> str:
    """One bounded chunk of a training run (queue ``gpu``)."""
    try:
        result = training_run_chunk(run_id=run_id, chunk=chunk)
    except DATABASE_ERRORS:
        raise  # retried with backoff on a fresh connection (DatabaseTask)
    except Exception as exc:
        _retry_or_give_up(self, exc, lambda reason: training_run_fail(run_id=run_id, reason=reason))
        return ChunkOutcome.FAILED
    if result.outcome == ChunkOutcome.BUSY:
        # Another delivery holds the lease: come back when it lapses (it may have died).
        if self.request.retries < 20:
            raise self.retry(countdown=result.retry_in)
    return result.outcome


def _round_step(task: Task, round_id: int, state: RoundState, step: Callable[[], T]) -> T | None:
    """Run one step of a round; on an unexpected error retry it within the attempt cap, then
    stop the round with the reason (a lost database connection is DatabaseTask's to retry)."""
    try:
        return step()
    except DATABASE_ERRORS:
        raise
    except Exception as exc:
        _retry_or_give_up(
            task,
            exc,
            lambda reason: round_services.round_fail(round_id=round_id, state=state, reason=reason),
        )
        return None


@shared_task(name="learning.score_chunk", bind=True, base=DatabaseTask, max_retries=25)
def score_chunk(self: Task, round_id: int) -> str:
    """Score the next chunk of candidate tiles (queue ``gpu``)."""
    outcome = _round_step(
        self, round_id, RoundState.SCORING, lambda: scoring_chunk(round_id=round_id)
    )
    return outcome or "failed"


@shared_task(name="learning.propose_round", bind=True, base=DatabaseTask, max_retries=25)
def propose_round(self: Task, round_id: int) -> int | None:
    """Turn the scores into the next round (queue ``gpu``); returns the new round's id."""
    next_round = _round_step(
        self, round_id, RoundState.PROPOSING, lambda: proposals_make(round_id=round_id)
    )
    return next_round.pk if next_round is not None else None
