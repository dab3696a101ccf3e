"""The database's side: a worker's PostgreSQL connection terminated mid-merge (as a restart,
failover or idle-timeout would) is retried with backoff on a fresh connection, and a
consensus run is published whole or not at all."""

from __future__ import annotations

import uuid

import pytest
from django.db import InterfaceError, OperationalError, connection

from annotation.models import AnnotatorReliability, ConsensusJob, ConsensusRun
from annotation.tasks import merge_region
from config.tasks import DATABASE_RETRY_MAX, DatabaseTask
from slides.tasks import ingest_slide
from tests.reliability.conftest import consensus_files, merge_ready_regions
from tests.worker import wait_for


def test_database_tasks_retry_on_a_lost_connection_a_bounded_number_of_times():
    for task in (merge_region, ingest_slide):
        assert isinstance(task, DatabaseTask), task.name
        assert {OperationalError, InterfaceError} <= set(task.autoretry_for)
        assert task.retry_backoff and task.max_retries == DATABASE_RETRY_MAX <= 10
        assert task.retry_backoff_max <= 60
        assert hasattr(task, "delay_on_commit")  # still Django's task class


@pytest.fixture
def postgres_only(db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (pg_terminate_backend); SQLite has no server to drop us")


@pytest.fixture
def pg_worker_env(postgres_only: None, worker_env: dict[str, str]) -> dict[str, str]:
    """The worker's connections carry an application_name of their own, to be found and killed."""
    name = f"hc-fault-{uuid.uuid4().hex[:8]}"
    url = worker_env["DATABASE_URL"]
    return dict(worker_env, DATABASE_URL=f"{url}?application_name={name}", HC_APP_NAME=name)


def _backends(app_name: str) -> list[tuple[int, str | None, str | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = %s",
            [app_name],
        )
        return cursor.fetchall()


def _terminate(app_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [app_name],
        )
        return cursor.fetchone()[0]


def _run_whole(run: ConsensusRun, annotators: list[int]) -> bool:
    """A visible run comes with every annotator's evidence from it (one transaction)."""
    rows = AnnotatorReliability.objects.filter(
        project_id=run.region.project_id, source="staple", annotator_id__in=annotators
    )
    with_evidence = [r for r in rows if str(run.region_id) in r.evidence]
    return len(with_evidence) == len(annotators)


@pytest.mark.django_db(transaction=True)
@pytest.mark.live_worker
@pytest.mark.timeout(150)
def test_connection_terminated_mid_merge_is_retried_and_publishes_once(
    campaign, faults, pg_worker_env, workers, queue_name
):
    (reg,) = merge_ready_regions(campaign, 1)
    app_name = pg_worker_env["HC_APP_NAME"]
    faults.mark("merge", reg.pk, "pause")
    worker = workers.start(pg_worker_env, queue_name, "pg-drop")
    task_id = merge_region.apply_async(args=[reg.pk], queue=queue_name).id
    faults.wait_paused("merge", reg.pk)
    before = {pid for pid, _, _ in _backends(app_name)}
    assert before, "the paused worker holds a connection"
    assert _terminate(app_name) >= 1
    faults.clear("merge", reg.pk, "pause")  # its next query meets the dead connection

    wait_for(lambda: ConsensusRun.objects.filter(region=reg).exists(), 60, 0.2, "the retry")
    log = worker.log_tail(200_000)
    assert "retries after a database error" in log and f"[{task_id}] retry" in log, log[-3000:]
    assert f"[{task_id}] succeeded" in log or ConsensusRun.objects.filter(region=reg).exists()
    assert ConsensusRun.objects.filter(region=reg).count() == 1
    assert ConsensusJob.objects.get(region=reg).attempts == 2  # the dropped run and the retry
    assert not before & {pid for pid, _, _ in _backends(app_name)}  # a fresh connection
    npz, temps = consensus_files(reg.pk)
    assert len(npz) == 1 and temps == []
    run = ConsensusRun.objects.get(region=reg)
    assert _run_whole(run, [u.pk for u in campaign["students"]])


@pytest.mark.django_db(transaction=True)
@pytest.mark.live_worker
@pytest.mark.timeout(150)
def test_connection_terminated_inside_the_publication_leaves_no_partial_run(
    campaign, pg_worker_env, workers, queue_name
):
    """The run row and its reliability updates are one transaction: the worker is held inside
    it (an annotator's reliability row is locked by the test), its connection is terminated
    there, and no run is ever visible without its evidence."""
    import psycopg

    (reg,) = merge_ready_regions(campaign, 1)
    annotators = [u.pk for u in campaign["students"]]
    app_name = pg_worker_env["HC_APP_NAME"]
    held = AnnotatorReliability.objects.create(
        project=campaign["project"], annotator=campaign["students"][0], source="staple"
    )
    settings_dict = connection.settings_dict
    locker = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        dbname=settings_dict["NAME"],
    )
    try:
        locker.execute(
            "SELECT id FROM annotation_annotatorreliability WHERE id = %s FOR UPDATE", [held.pk]
        )
        workers.start(pg_worker_env, queue_name, "pg-publish")
        merge_region.apply_async(args=[reg.pk], queue=queue_name)

        def waiting_on_the_lock() -> bool:
            return any(wait == "Lock" for _, _, wait in _backends(app_name))

        wait_for(waiting_on_the_lock, 60, 0.05, "the worker to wait inside its publication")
        # The run row is inserted by now, inside the open transaction: nobody sees it.
        assert not ConsensusRun.objects.filter(region=reg).exists()
        assert _terminate(app_name) >= 1
    finally:
        locker.rollback()
        locker.close()

    def published_whole() -> bool:
        run = ConsensusRun.objects.filter(region=reg).select_related("region").first()
        if run is None:
            return False
        assert _run_whole(run, annotators), "a run visible without its reliability evidence"
        return True

    wait_for(published_whole, 60, 0.05, "the retried publication")
    assert ConsensusRun.objects.filter(region=reg).count() == 1
    assert ConsensusJob.objects.get(region=reg).attempts == 2
