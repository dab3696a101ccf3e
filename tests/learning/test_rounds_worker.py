"""Rounds through a real Celery worker on the test broker: a whole round, repeated deliveries,
and a training chunk killed mid-run."""

from __future__ import annotations

import pytest
from celery import current_app
from django.test import override_settings
from django.utils import timezone

from annotation.models import Assignment, Project, Region, RegionOrigin
from learning.models import (
    CandidateScore,
    ModelVersion,
    Proposal,
    Round,
    RoundState,
    RunStatus,
    TrainingRun,
)
from learning.services.rounds import round_current, round_start
from tests.learning.rounds_helpers import label_truthfully, make_campaign
from tests.worker import LiveWorker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live_worker]


def _counts(project: Project) -> dict[str, int]:
    return {
        "regions": Region.objects.filter(project=project).count(),
        "assignments": Assignment.objects.filter(region__project=project).count(),
        "rounds": Round.objects.filter(project=project).count(),
        "versions": ModelVersion.objects.filter(project=project).count(),
        "runs": TrainingRun.objects.filter(project=project).count(),
        "scores": CandidateScore.objects.filter(tile__project=project).count(),
        "proposals": Proposal.objects.filter(round__project=project).count(),
    }


def _deliver(worker: LiveWorker, name: str, args: list) -> None:
    """Send a task and wait until the worker has finished it."""
    task_id = current_app.send_task(name, args=args).id
    wait_for(
        lambda: f"[{task_id}] succeeded" in worker.log_path.read_text(errors="replace"),
        60,
        0.2,
        f"{name}{args} to finish",
    )


@pytest.mark.smoke
@pytest.mark.timeout(240)
def test_accepted_regions_start_a_round_that_runs_to_the_next(live_worker):
    campaign = make_campaign()
    project = campaign["project"]
    # Each merge announces its accepted region on commit; the worker counts the quota.
    label_truthfully(campaign, campaign["regions"])
    wait_for(
        lambda: (
            Round.objects.filter(project=project, number=1).exists()
            or Round.objects.filter(project=project).exclude(failed_reason="").exists()
        ),
        180,
        0.5,
        "round 1 to be proposed",
    )
    first = Round.objects.get(project=project, number=0)
    assert first.failed_reason == "" and first.state == RoundState.DONE, first.failed_reason
    assert first.trigger == "quota"
    assert Round.objects.get(project=project, number=1).state == RoundState.COLLECTING
    version = ModelVersion.objects.get(project=project)
    assert first.model_version == version
    proposed = Region.objects.filter(project=project, origin=RegionOrigin.PROPOSED, round_number=1)
    assert proposed.count() == project.round_size
    assert Assignment.objects.filter(region__in=proposed).count() == 2 * project.round_size

    # A second delivery of each task changes nothing.
    before = _counts(project)
    run = TrainingRun.objects.get(project=project)
    _deliver(live_worker, "learning.train_chunk", [run.pk, 0])
    _deliver(live_worker, "learning.score_chunk", [first.pk])
    _deliver(live_worker, "learning.propose_round", [first.pk])
    _deliver(live_worker, "learning.region_accepted", [project.pk])
    _deliver(live_worker, "learning.check_rounds", [])
    assert _counts(project) == before


EPOCHS = 30


def _long_training() -> tuple[Project, TrainingRun, int]:
    """A run long enough to be killed mid-way (no early stop), at epoch 3 or later; returns the
    project, the run and the epoch it had reached."""
    campaign = make_campaign()
    project = campaign["project"]
    Project.objects.filter(pk=project.pk).update(auto_rounds=False)
    label_truthfully(campaign, campaign["regions"])
    with override_settings(LEARNING_EPOCHS=EPOCHS, LEARNING_PATIENCE=1000):
        current = round_start(round=round_current(project=project), user=campaign["manager"])
    run = TrainingRun.objects.get(round=current)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).epoch >= 3, 120, 0.1, "epoch 3")
    return project, run, TrainingRun.objects.get(pk=run.pk).epoch


def _assert_resumed_once(project: Project, run: TrainingRun, killed_at: int) -> None:
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).status in (RunStatus.FINISHED, RunStatus.FAILED),
        150,
        0.5,
        "the run to end",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED, run.failed_reason
    assert killed_at < EPOCHS
    assert [h["epoch"] for h in run.history] == list(range(1, EPOCHS + 1))
    # The redelivered chunk took over (attempt 2) from the last checkpoint, not from epoch 1.
    resumed = [h for h in run.history if h["attempt"] == 2]
    assert resumed and 1 < resumed[0]["epoch"] <= killed_at + 1
    assert ModelVersion.objects.filter(training_run=run).count() == 1
    assert ModelVersion.objects.filter(project=project).count() == 1


@pytest.mark.timeout(240)
def test_training_chunk_killed_mid_run_resumes_from_its_checkpoint(live_worker):
    project, run, killed_at = _long_training()
    live_worker.kill_pool_child()
    _assert_resumed_once(project, run, killed_at)


@pytest.mark.timeout(240)
def test_whole_worker_killed_mid_training_the_periodic_check_resumes_the_run(live_worker):
    project, run, _ = _long_training()
    # Nothing gets to ack or reject: the message waits for the broker's visibility timeout.
    live_worker.kill_whole()
    killed_at = TrainingRun.objects.get(pk=run.pk).epoch
    live_worker.start()
    # The lease lapses (15 s in tests); the periodic check queues the due chunk again.
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).lease_expires < timezone.now(), 60, 0.5, "lease"
    )
    _deliver(live_worker, "learning.check_rounds", [])
    _assert_resumed_once(project, run, killed_at)
