"""Shared fixtures: real data, users and roles, and a live Celery worker on a real broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.datapaths import shared_data_dir
from tests.worker import LiveWorker


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_dir()


@pytest.fixture(scope="session")
def slides_dir(shared_data: Path) -> Path:
    return shared_data / "slides"


def _database_url(settings_dict: dict) -> str:
    """The test database as a DATABASE_URL, for worker processes (the simulator's rule)."""
    from learning.simulation.live import database_url

    return database_url(settings_dict)


def _purge_broker(url: str) -> None:
    """Start from an empty test broker so messages of an aborted run are not replayed."""
    if url.startswith("redis://"):
        import redis

        # Only this session's keys: other sessions may share the database.
        from django.conf import settings

        client = redis.Redis.from_url(url)
        prefix = settings.CELERY_REDIS_KEY_PREFIX
        if prefix:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        else:
            client.flushdb()
    elif url.startswith("filesystem://"):
        from django.conf import settings

        for sub in ("in", "processed"):
            for message in (settings.CELERY_BROKER_DIR / sub).glob("*"):
                message.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def live_worker(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveWorker]:
    """One real ``celery worker`` process for the session, on the test database and broker.

    Tests that use it must be ``@pytest.mark.django_db(transaction=True)`` so that the rows they
    create are committed and visible to the worker.
    """
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env["DATABASE_URL"] = _database_url(connection.settings_dict)
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    _purge_broker(settings.CELERY_BROKER_URL)
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = LiveWorker(env, log, concurrency=1)
    worker.start()
    yield worker
    worker.stop()
    _purge_broker(settings.CELERY_BROKER_URL)  # leave no keys of this session behind


@pytest.fixture
def manager(db: None) -> object:
    from tests.factories import make_user

    return make_user("manager")


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    """Per-process caches must not carry answers from one test's rows to the next's."""
    from django.conf import settings

    if not settings.configured:  # pure-module runs with -p no:django
        yield
        return
    from django.core.cache import caches

    for alias in ("default", "tiles"):
        caches[alias].clear()
    yield
