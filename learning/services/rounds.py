"""The round state machine: collecting -> training -> scoring -> proposing -> next round.

Every transition locks the round row and checks its state first, so two deliveries of a task
(or a task and a manager's click) never both act. The quota is counted from the database each
time (``learning.region_accepted`` and the periodic check only say "look again").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import CampaignState, Project, Region, RegionOrigin
from annotation.selectors_consensus import accepted_regions
from learning.models import Round, RoundState, RoundTrigger, TrainingRun

logger = logging.getLogger(__name__)

STEP_TASKS = {
    RoundState.TRAINING: "learning.train_chunk",
    RoundState.SCORING: "learning.score_chunk",
    RoundState.PROPOSING: "learning.propose_round",
}


class RoundError(ValueError):
    """A request the round cannot take now (wrong state, campaign paused, nothing to learn)."""


@dataclass(frozen=True)
class Quota:
    """Accepted regions of a round against what it needs (gold regions do not count)."""

    accepted: int
    needed: int
    regions: int

    @property
    def met(self) -> bool:
        return self.regions > 0 and self.accepted >= self.needed


def round_current(*, project: Project) -> Round:
    """The project's open round, created (collecting) when there is none."""
    open_round = Round.objects.filter(project=project).exclude(state=RoundState.DONE).first()
    if open_round is not None:
        return open_round
    last = Round.objects.filter(project=project).order_by("-number").first()
    number = 0 if last is None else last.number + 1
    try:
        with transaction.atomic():
            return Round.objects.create(project=project, number=number)
    except IntegrityError:  # created by a parallel call
        return Round.objects.filter(project=project).exclude(state=RoundState.DONE).get()


def round_quota(*, round: Round) -> Quota:
    """Count, from the database, the round's regions and those with an accepted answer."""
    regions = Region.objects.filter(project=round.project, round_number=round.number).exclude(
        origin=RegionOrigin.GOLD
    )
    total = regions.count()
    accepted = sum(
        1
        for a in accepted_regions(round.project)
        if a.region.round_number == round.number and a.region.origin != RegionOrigin.GOLD
    )
    needed = max(1, math.ceil(round.project.round_quota * total))
    return Quota(accepted=accepted, needed=needed, regions=total)


def _elapsed(current: Round) -> float:
    since = current.advanced_at or current.created_at
    return round((timezone.now() - since).total_seconds(), 3)


def round_transition(
    *, round_id: int, from_state: str, to_state: str, **fields: object
) -> Round | None:
    """Move the round from ``from_state`` to ``to_state`` (locked); None if it was not there.

    Records the wall time of the state it leaves and resets the step's attempts and progress.
    """
    with transaction.atomic():
        round = Round.objects.select_for_update().filter(pk=round_id).first()
        if round is None or round.state != from_state:
            return None
        round.stage_seconds = {**round.stage_seconds, from_state: _elapsed(round)}
        round.state = to_state
        round.advanced_at = timezone.now()
        round.step_attempts = 0
        round.step_started_at = None
        round.failed_reason = ""
        round.progress = {}
        for name, value in fields.items():
            setattr(round, name, value)
        round.save()
    logger.info("round %s of project %s: %s -> %s", round.number, round.project_id,
                from_state, to_state)  # fmt: skip
    return round


def round_enqueue_step(*, round: Round) -> None:
    """On commit, send the task of the round's current step (nothing while collecting)."""
    task = STEP_TASKS.get(RoundState(round.state))
    if task is None:
        return
    if round.state == RoundState.TRAINING:
        run = TrainingRun.objects.filter(round=round).order_by("-id").first()
        if run is None:
            return
        args = [run.pk, run.chunks]
    else:
        args = [round.pk]
    transaction.on_commit(lambda: current_app.send_task(task, args=args))


def round_start_training(*, round_id: int, trigger: str, user: object | None = None) -> Round:
    """collecting -> training: freeze the training set and queue its run (or skip it)."""
    from learning.services.training_runs import training_run_begin

    with transaction.atomic():
        round = round_transition(
            round_id=round_id,
            from_state=RoundState.COLLECTING,
            to_state=RoundState.TRAINING,
            trigger=trigger,
            started_by=user,
        )
        if round is None:
            raise RoundError("the round is not collecting labels")
        training_run_begin(round=round)
    round.refresh_from_db()
    return round


def round_check(*, project_id: int) -> Round | None:
    """Start training if the open round met its quota (campaign open, auto rounds on)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or project.state != CampaignState.OPEN or not project.auto_rounds:
        return None
    round = round_current(project=project)
    if round.state != RoundState.COLLECTING or not round_quota(round=round).met:
        return None
    try:
        return round_start_training(round_id=round.pk, trigger=RoundTrigger.QUOTA)
    except RoundError:
        return None  # another check started it a moment ago


def round_start(*, round: Round, user: object) -> Round:
    """A manager starts training now, whatever the quota (needs an accepted region)."""
    project = round.project
    if project.state != CampaignState.OPEN:
        raise RoundError("the campaign is not open: open it to start a round")
    if round.state != RoundState.COLLECTING:
        raise RoundError(f"the round is {round.state}, not collecting labels")
    if not accepted_regions(project):
        raise RoundError("no region has an accepted answer yet: nothing to train on")
    return round_start_training(round_id=round.pk, trigger=RoundTrigger.MANAGER, user=user)


def round_fail(*, round_id: int, state: str, reason: str) -> None:
    """The current step gave up: show why and wait for a manager's retry."""
    Round.objects.filter(pk=round_id, state=state).update(failed_reason=reason[:2000])
    logger.warning("round %s failed in %s: %s", round_id, state, reason)


def round_retry(*, round: Round, user: object) -> Round:
    """A manager retries a failed step: clear the failure and its attempts, queue it again."""
    from learning.services.training_runs import training_run_retry

    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        if not locked.failed_reason:
            raise RoundError("the round has not failed: nothing to retry")
        locked.failed_reason = ""
        locked.step_attempts = 0
        locked.save(update_fields=["failed_reason", "step_attempts"])
        if locked.state == RoundState.TRAINING:
            training_run_retry(round=locked)
        round_enqueue_step(round=locked)
    logger.info("round %s retried by user %s", round.pk, getattr(user, "pk", None))
    return locked


def round_claim_step(*, round_id: int, state: str, max_attempts: int) -> Round | None:
    """Count one more delivery of the round's current step; None if the step is not current,
    has failed, or just hit the attempt cap (then the round fails with the reason)."""
    with transaction.atomic():
        round = Round.objects.select_for_update().filter(pk=round_id).first()
        if round is None or round.state != state or round.failed_reason:
            return None
        round.step_attempts += 1
        round.step_started_at = timezone.now()
        round.save(update_fields=["step_attempts", "step_started_at"])
    if round.step_attempts > max_attempts:
        round_fail(
            round_id=round_id,
            state=state,
            reason=f"{state} was started {round.step_attempts - 1} times without finishing "
            "(its worker died each time?)",
        )
        return None
    return round


def round_set_progress(
    *, round_id: int, state: str, progress: dict[str, object], step_done: bool = False
) -> None:
    """What the project page shows for the running step. ``step_done``: a bounded part of the
    step finished, so its delivery count starts again (the cap is per part)."""
    fields: dict[str, object] = {"progress": progress}
    if step_done:
        fields["step_attempts"] = 0
    Round.objects.filter(pk=round_id, state=state).update(**fields)
