"""Workers killed mid-task, a poison input, and a task redelivered while it still runs.

Each test starts real ``celery worker`` processes of its own on a queue of its own, with the
fault-injection module (tests/reliability/faults.py) steering the real merge and ingest paths.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from annotation.models import AnnotatorReliability, ConsensusJob, ConsensusRun
from annotation.tasks import merge_region
from slides.models import Slide, SlideStatus
from slides.tasks import ingest_slide
from tests.reliability.conftest import (
    broker_idle,
    consensus_files,
    merge_ready_regions,
    require_redis,
)
from tests.worker import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live_worker]


def _runs(region_id: int) -> int:
    return ConsensusRun.objects.filter(region_id=region_id).count()


def _attempts(region_id: int) -> int:
    return ConsensusJob.objects.get(region_id=region_id).attempts


@pytest.mark.timeout(150)
def test_whole_worker_killed_mid_merge_is_redelivered_and_publishes_once(
    campaign, faults, worker_env, workers, queue_name
):
    """SIGKILL of the main process and its pool mid-merge: nothing acks or rejects the message;
    the broker's visibility timeout (10 s here, restored every 1 s) hands it to a new worker."""
    require_redis(worker_env["CELERY_BROKER_URL"])
    (reg,) = merge_ready_regions(campaign, 1)
    env = dict(worker_env, CELERY_VISIBILITY_TIMEOUT="10", CELERY_TASK_TIME_LIMIT="8")
    faults.mark("merge", reg.pk, "pause")
    doomed = workers.start(env, queue_name, "doomed")
    merge_region.apply_async(args=[reg.pk], queue=queue_name)
    faults.wait_paused("merge", reg.pk)
    assert _attempts(reg.pk) == 1 and _runs(reg.pk) == 0  # killed after its claim
    doomed.kill_whole()
    killed_at = time.monotonic()
    faults.clear("merge", reg.pk, "pause")

    workers.start(env, queue_name, "rescuer")
    wait_for(lambda: _runs(reg.pk), 90, 0.2, "the redelivered merge to publish")
    waited = time.monotonic() - killed_at
    assert waited < 60, waited  # 10 s timeout + 1 s sweeps; kombu's defaults took ~92 s
    assert _runs(reg.pk) == 1
    assert _attempts(reg.pk) == 2  # the killed run and the redelivered one
    npz, temps = consensus_files(reg.pk)
    assert len(npz) == 1 and temps == []
    wait_for(
        lambda: broker_idle(env["CELERY_BROKER_URL"], queue_name), 30, 0.5, "the message's ack"
    )


@pytest.mark.timeout(150)
def test_merge_that_kills_its_worker_every_time_stops_after_three_runs_with_a_reason(
    campaign, faults, worker_env, workers, queue_name
):
    poison, *healthy = merge_ready_regions(campaign, 3)
    faults.mark("merge", poison.pk, "kill")
    worker = workers.start(worker_env, queue_name, "poison", concurrency=2)
    merge_region.apply_async(args=[poison.pk], queue=queue_name)
    for reg in healthy:
        merge_region.apply_async(args=[reg.pk], queue=queue_name)

    def gave_up() -> bool:
        return ConsensusJob.objects.filter(region=poison).exclude(failed_reason="").exists()

    wait_for(gave_up, 120, 0.2, "the poison merge to give up")
    job = ConsensusJob.objects.get(region=poison)
    assert settings.CELERY_TASK_MAX_ATTEMPTS == 3
    assert job.attempts == 3
    assert faults.runs("merge", poison.pk) == 3  # three runs died; the fourth delivery stopped
    assert "3 attempts" in job.failed_reason and job.finished_at is None
    assert _runs(poison.pk) == 0
    # The other merges flowed past it, and the worker itself never went down.
    wait_for(lambda: all(_runs(r.pk) == 1 for r in healthy), 60, 0.2, "the healthy merges")
    assert worker.process.poll() is None, worker.log_tail()
    if worker_env["CELERY_BROKER_URL"].startswith("redis://"):
        wait_for(lambda: broker_idle(worker_env["CELERY_BROKER_URL"], queue_name), 30, 0.5,
                 "the poison message to be acked, not requeued again")  # fmt: skip
    assert faults.runs("merge", poison.pk) == 3


@pytest.mark.timeout(150)
def test_ingest_that_kills_its_worker_every_time_ends_failed_after_three_runs(
    faults, worker_env, workers, queue_name, slides_dir
):
    poison = Slide.objects.create(name="poison", path="/nonexistent/poison.svs")
    good = Slide.objects.create(name="good", path=str(slides_dir / "cmu-1-small-region.svs"))
    faults.mark("ingest", poison.pk, "kill")
    worker = workers.start(worker_env, queue_name, "poison-ingest", concurrency=2)
    ingest_slide.apply_async(args=[poison.pk], queue=queue_name)
    ingest_slide.apply_async(args=[good.pk], queue=queue_name)

    def settled(slide_id: int) -> bool:
        return Slide.objects.filter(pk=slide_id).exclude(status=SlideStatus.PENDING).exists()

    wait_for(lambda: settled(poison.pk), 120, 0.2, "the poison ingest to give up")
    poison.refresh_from_db()
    assert poison.status == SlideStatus.FAILED
    assert poison.ingest_attempts == 3
    assert "3 attempts" in poison.status_reason
    assert faults.runs("ingest", poison.pk) == 3
    wait_for(lambda: settled(good.pk), 120, 0.2, "the healthy ingest")
    good.refresh_from_db()
    assert good.status == SlideStatus.READY, good.status_reason
    assert good.ingest_attempts == 1
    assert worker.process.poll() is None, worker.log_tail()


@pytest.mark.timeout(180)
def test_merge_redelivered_while_still_running_publishes_once(
    campaign, faults, worker_env, workers, queue_name
):
    """A merge longer than the visibility timeout (16 s against 10 s: its own time limit is
    above the timeout, which settings refuse for the defaults) is handed to the second worker
    while the first still runs it. Both compute; the unique (region, inputs_hash) run decides
    which publishes, the loser's reliability updates roll back and it shares the same file."""
    require_redis(worker_env["CELERY_BROKER_URL"])
    (reg,) = merge_ready_regions(campaign, 1)
    env = dict(worker_env, CELERY_VISIBILITY_TIMEOUT="10", CELERY_TASK_TIME_LIMIT="8")
    faults.mark("merge", reg.pk, "sleep", "16")
    first = workers.start(env, queue_name, "first")
    second = workers.start(env, queue_name, "second")
    task_id = merge_region.apply_async(
        args=[reg.pk], queue=queue_name, time_limit=60, soft_time_limit=55
    ).id

    def received_by_both() -> bool:
        return all(f"[{task_id}] received" in w.log_tail(100_000) for w in (first, second))

    wait_for(received_by_both, 60, 0.2, "the redelivery to the second worker")
    # Both runs reached the work itself, the second while the first was still in it.
    wait_for(lambda: faults.runs("merge", reg.pk) == 2, 30, 0.2, "the second run to start")
    wait_for(lambda: _attempts(reg.pk) == 2, 10, 0.2, "the second claim")
    wait_for(
        lambda: all(f"[{task_id}] succeeded" in w.log_tail(100_000) for w in (first, second)),
        90,
        0.5,
        "both runs to end",
    )
    assert _runs(reg.pk) == 1
    npz, temps = consensus_files(reg.pk)
    assert len(npz) == 1 and temps == []
    run = ConsensusRun.objects.get(region=reg)
    assert run.arrays_path == npz[0].relative_to(settings.MEDIA_ROOT).as_posix()
    # Each annotator's evidence holds this region once (one region in the project).
    rows = AnnotatorReliability.objects.filter(project=campaign["project"], source="staple")
    assert sorted(r.n_regions for r in rows) == [1, 1, 1]
    assert all(list(r.evidence) == [str(reg.pk)] for r in rows)
