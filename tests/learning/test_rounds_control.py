"""Managing rounds: the API, cancelling training, the attempt cap, failure and retry."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from annotation.models import Project
from learning.models import Round, RoundState, RunStatus, TrainingRun
from learning.networks import UNetConfig, build_model, save_weights
from learning.services.rounds import round_current, round_start
from learning.services.training_runs import ChunkOutcome, training_run_cancel, training_run_chunk
from tests.learning.factories import make_version
from tests.learning.rounds_helpers import label_truthfully, make_campaign
from tests.worker import wait_for


def _client(user: object) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_rounds_api_shows_the_quota_and_only_managers_start(tmp_path):
    campaign = make_campaign()
    project, manager = campaign["project"], campaign["manager"]
    label_truthfully(campaign, campaign["regions"][:2])
    url = f"/api/projects/{project.pk}/rounds/"
    listing = _client(campaign["expert"]).get(url)
    assert listing.status_code == 200
    (current,) = listing.json()
    # 6 seeded regions, quota 0.5: 3 needed, 2 accepted.
    assert current["state"] == "collecting"
    assert current["quota"] == {"accepted": 2, "needed": 3, "regions": 6}
    assert _client(campaign["students"][0]).get(url).status_code == 404

    start = f"/api/projects/{project.pk}/rounds/start/"
    assert _client(campaign["expert"]).post(start).status_code == 404
    assert Round.objects.get(project=project).state == RoundState.COLLECTING
    response = _client(manager).post(start)
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "training" and response.json()["trigger"] == "manager"
    # Twice: the round is no longer collecting.
    again = _client(manager).post(start)
    assert again.status_code == 409 and "not collecting" in again.json()["detail"]
    assert TrainingRun.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_cancelled_training_returns_the_round_to_collecting():
    campaign = make_campaign()
    project = campaign["project"]
    label_truthfully(campaign, campaign["regions"])
    current = round_start(round=round_current(project=project), user=campaign["manager"])
    run = TrainingRun.objects.get(round=current)
    response = _client(campaign["manager"]).post(f"/api/training-runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    current.refresh_from_db()
    assert current.state == RoundState.COLLECTING
    # A late delivery of the cancelled run's chunk does nothing.
    assert training_run_chunk(run_id=run.pk, chunk=0).outcome == ChunkOutcome.STALE
    # The manager can start again: a new run.
    round_start(round=current, user=campaign["manager"])
    assert TrainingRun.objects.filter(round=current, status=RunStatus.QUEUED).count() == 1
    with pytest.raises(ValueError, match="nothing to cancel"):
        training_run_cancel(run=TrainingRun.objects.get(pk=run.pk), user=campaign["manager"])


@pytest.mark.django_db
def test_a_chunk_started_too_often_fails_the_run_with_its_reason(settings):
    settings.CELERY_TASK_MAX_ATTEMPTS = 3
    campaign = make_campaign()
    project = campaign["project"]
    label_truthfully(campaign, campaign["regions"])
    current = round_start(round=round_current(project=project), user=campaign["manager"])
    run = TrainingRun.objects.get(round=current)
    # Three deliveries began and died (no lease left behind: each lapsed).
    TrainingRun.objects.filter(pk=run.pk).update(chunk_attempts=3)
    assert training_run_chunk(run_id=run.pk, chunk=0).outcome == ChunkOutcome.FAILED
    run.refresh_from_db()
    current.refresh_from_db()
    assert run.status == RunStatus.FAILED and "started 3 times" in run.failed_reason
    assert "started 3 times" in current.failed_reason and current.state == RoundState.TRAINING
    # The manager's retry starts a new run of the same round.
    response = _client(campaign["manager"]).post(f"/api/rounds/{current.pk}/retry/")
    assert response.status_code == 200, response.content
    assert response.json()["failed_reason"] == ""
    assert TrainingRun.objects.filter(round=current, status=RunStatus.QUEUED).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.live_worker
@pytest.mark.timeout(240)
def test_failing_step_is_retried_within_its_bound_then_waits_for_a_retry(live_worker):
    campaign = make_campaign()
    project = campaign["project"]
    Project.objects.filter(pk=project.pk).update(auto_rounds=False)
    current = round_current(project=project)
    # A version whose weights file is missing: scoring cannot load the model.
    version = make_version(project, class_ids=[None, campaign["gland"].pk])
    Round.objects.filter(pk=current.pk).update(state=RoundState.SCORING, model_version=version)
    from celery import current_app

    current_app.send_task("learning.score_chunk", args=[current.pk])
    wait_for(
        lambda: Round.objects.get(pk=current.pk).failed_reason != "",
        90,
        0.3,
        "the scoring step to give up",
    )
    failed = Round.objects.get(pk=current.pk)
    assert "FileNotFoundError" in failed.failed_reason or "No such file" in failed.failed_reason
    # Tried as often as the cap allows, no more.
    assert failed.step_attempts == settings.CELERY_TASK_MAX_ATTEMPTS
    assert failed.state == RoundState.SCORING

    weights = Path(settings.MEDIA_ROOT) / version.weights_path
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_weights(build_model(UNetConfig(num_classes=2, depth=2, base_width=4)), weights)
    response = _client(campaign["manager"]).post(f"/api/rounds/{current.pk}/retry/")
    assert response.status_code == 200, response.content
    wait_for(
        lambda: (
            Round.objects.filter(project=project, number=1).exists()
            or Round.objects.get(pk=current.pk).failed_reason != ""
        ),
        120,
        0.5,
        "the retried round to propose the next one",
    )
    done = Round.objects.get(pk=current.pk)
    assert done.state == RoundState.DONE, done.failed_reason


def test_project_strategy_choices_are_the_registered_strategies():
    from annotation.models.projects import SELECTION_STRATEGIES
    from learning.strategies import available_strategies

    assert sorted(SELECTION_STRATEGIES) == available_strategies()


@pytest.mark.django_db
def test_model_version_is_published_whole_or_not_at_all(monkeypatch, settings):
    """The database drops during the version's publication: no version, run or round move is
    visible; the next delivery publishes it once.

    Not a transactional test on purpose: its chunks must not reach a live worker on the test
    broker, which would train the run in parallel (the publication is inside its own atomic
    block either way, a savepoint here)."""
    from django.db import OperationalError

    from learning.models import ModelVersion
    from learning.services import rounds as round_services

    settings.LEARNING_EPOCHS = 2
    campaign = make_campaign()
    project = campaign["project"]
    Project.objects.filter(pk=project.pk).update(auto_rounds=False)
    label_truthfully(campaign, campaign["regions"])
    current = round_start(round=round_current(project=project), user=campaign["manager"])
    run = TrainingRun.objects.get(round=current)
    real = round_services.round_transition

    def drop_once(**kwargs):
        monkeypatch.setattr(round_services, "round_transition", real)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(round_services, "round_transition", drop_once)
    with pytest.raises(OperationalError):
        while (
            training_run_chunk(
                run_id=run.pk, chunk=TrainingRun.objects.get(pk=run.pk).chunks
            ).outcome
            == ChunkOutcome.CONTINUED
        ):
            pass
    assert not ModelVersion.objects.exists()
    run.refresh_from_db()
    current.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.lease_token == ""  # free for the retry
    assert current.state == RoundState.TRAINING
    # The retry (same chunk) finds the finished checkpoint and publishes.
    result = training_run_chunk(run_id=run.pk, chunk=run.chunks)
    assert result.outcome == ChunkOutcome.FINISHED
    assert ModelVersion.objects.filter(training_run=run).count() == 1
    current.refresh_from_db()
    assert current.state == RoundState.SCORING
