"""Fixtures of the fault tests: workers of the test's own (with fault injection), a campaign
whose regions merge in well under a second, and marker files that steer the faults."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker import LiveWorker, wait_for

FAULTS_MODULE = "tests.reliability.faults"


class Faults:
    """Marker files read by tests/reliability/faults.py inside the worker."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def mark(self, kind: str, object_id: int, fault: str, value: str = "") -> None:
        (self.folder / f"{kind}-{object_id}.{fault}").write_text(value)

    def clear(self, kind: str, object_id: int, fault: str) -> None:
        (self.folder / f"{kind}-{object_id}.{fault}").unlink(missing_ok=True)

    def runs(self, kind: str, object_id: int) -> int:
        runs = self.folder / f"{kind}-{object_id}.runs"
        return len(runs.read_text().splitlines()) if runs.exists() else 0

    def wait_paused(self, kind: str, object_id: int, timeout: float = 60) -> int:
        paused = self.folder / f"{kind}-{object_id}.paused"
        wait_for(paused.exists, timeout, 0.05, f"{kind} {object_id} to reach its pause")
        return int(paused.read_text())


@pytest.fixture
def faults(tmp_path: Path) -> Faults:
    folder = tmp_path / "faults"
    folder.mkdir()
    return Faults(folder)


@pytest.fixture
def worker_env(django_db_setup: None, faults: Faults) -> dict[str, str]:
    """The environment of a test worker: the test database and broker, fault markers, and
    dead workers' tasks restored within about a second of their visibility timeout."""
    from django.conf import settings
    from django.db import connection

    from tests.conftest import _database_url

    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(connection.settings_dict),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        HC_FAULTS_DIR=str(faults.folder),
        CELERY_UNACKED_RESTORE_INTERVAL="1",
        CELERY_UNACKED_RESTORE_THROTTLE="1",
    )
    return env


class Workers:
    """Starts workers on queues of the test's own and stops every one at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[LiveWorker] = []

    def start(self, env: dict[str, str], queue: str, name: str, concurrency: int = 1) -> LiveWorker:
        worker = LiveWorker(
            env,
            self.folder / f"{name}.log",
            queues=queue,
            concurrency=concurrency,
            name=name,
            include=FAULTS_MODULE,
        )
        self.started.append(worker)
        worker.start()
        return worker

    def stop_all(self) -> None:
        """SIGTERM to every worker first, then wait: their shutdowns overlap."""
        import signal

        for worker in self.started:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.started:
            worker.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def queue_name() -> str:
    """A queue only this test's workers listen to (the session worker never takes its tasks)."""
    return f"rel-{uuid.uuid4().hex[:8]}"


def require_redis(url: str) -> None:
    if not url.startswith("redis://"):
        pytest.skip("needs the Redis transport (visibility timeout and unacked restore)")


def broker_idle(url: str, queue: str) -> bool:
    """The queue is empty and no message is delivered-but-unacked under this session's prefix."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(url)
    prefix = settings.CELERY_REDIS_KEY_PREFIX
    return client.llen(f"{prefix}{queue}") == 0 and client.zcard(f"{prefix}unacked_index") == 0


@pytest.fixture
def campaign(db: None) -> dict:
    """Three annotators on a slide row at 0.5 um/px worked at 0.5 um/px (no file: merges read
    none). k = 4 while the tests submit three, so no submit queues a merge by itself: each test
    sends its merges to its own workers."""
    from annotation.models import LabelClass
    from slides.models import Slide
    from tests.factories import add_member, make_project, make_user

    manager = make_user("mgr")
    students = [make_user(f"s{i}") for i in range(3)]
    project = make_project(manager, target_mpp=0.5, redundancy_k=4, gold_mix_rate=0.0)
    for student in students:
        add_member(project, student, "annotator")
    slide = Slide.objects.create(
        name="faults",
        path="/nonexistent/faults.svs",
        status="ready",
        width=8000,
        height=8000,
        mpp_x=0.5,
        mpp_y=0.5,
    )
    project.slides.add(slide)
    tumour = LabelClass.objects.create(project=project, name="tumour", order=1)
    LabelClass.objects.create(project=project, name="none", order=0, is_background=True)
    return {"project": project, "slide": slide, "students": students, "tumour": tumour}


def merge_ready_regions(campaign: dict, n: int) -> list:
    """``n`` 100-px regions, each with three submitted outlines (Dice by hand: two identical
    40-px squares and one shifted by 4 px)."""
    from tests.annotation.merge_helpers import region, submit

    made = []
    for i in range(n):
        x = 200 + 300 * i
        reg = region(campaign["project"], campaign["slide"], x, 200, 100)
        for user, dx in zip(campaign["students"], (0, 0, 4), strict=True):
            submit(reg, user, [(x + 30 + dx, 230, 40)], campaign["tumour"])
        made.append(reg)
    return made


def consensus_files(region_id: int) -> tuple[list[Path], list[Path]]:
    from django.conf import settings

    folder = Path(settings.MEDIA_ROOT) / "consensus" / str(region_id)
    return sorted(folder.glob("*.npz")), sorted(folder.glob(".tmp-*"))
