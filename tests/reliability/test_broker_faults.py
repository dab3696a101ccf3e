"""The broker's side: queued work survives a Redis restart only with the append-only file, and
nothing is queued from a transaction that rolls back."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from celery.signals import after_task_publish
from django.db import transaction

from annotation.models import ConsensusRun, Project, Submission
from annotation.tasks import merge_region
from config.celery import app
from slides.models import Slide
from slides.services import slide_register
from tests.annotation.merge_helpers import submit
from tests.reliability.conftest import merge_ready_regions
from tests.worker import REPO, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_CONF = REPO / "deploy" / "redis.conf"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own, on its own port and data folder, from deploy/redis.conf."""

    def __init__(self, folder: Path, *overrides: str) -> None:
        self.folder, self.overrides = folder, overrides
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                str(REDIS_CONF),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
                *self.overrides,
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, 20, 0.05, "redis-server to answer")

    def _answers(self) -> bool:
        import redis

        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError((self.folder / "redis.log").read_text()[-2000:])
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture
def own_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    servers: list[RedisServer] = []

    def start(*overrides: str) -> RedisServer:
        server = RedisServer(tmp_path, *overrides)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


def _queue_length(url: str, queue: str) -> int:
    import redis
    from django.conf import settings

    return redis.Redis.from_url(url).llen(f"{settings.CELERY_REDIS_KEY_PREFIX}{queue}")


def _queue_merges(url: str, queue: str, region_ids: list[int]) -> None:
    """Publish to the test's Redis (the app's own options: key prefix, serializer), declaring
    the queue first as a worker would."""
    from django.conf import settings

    # The session broker may be the filesystem transport: give the Redis options explicitly.
    options = {"global_keyprefix": settings.CELERY_REDIS_KEY_PREFIX}
    with app.connection_for_write(url, transport_options=options) as conn:
        app.amqp.queues[queue](conn.default_channel).declare()
        for region_id in region_ids:
            merge_region.apply_async(args=[region_id], queue=queue, connection=conn)


@pytest.mark.live_worker
@pytest.mark.timeout(150)
@pytest.mark.parametrize(
    ("persistence", "overrides", "survive"),
    [
        ("deploy/redis.conf (appendonly yes)", (), True),
        ("no persistence (appendonly no, save '')", ("--appendonly", "no", "--save", ""), False),
    ],
    ids=["aof", "no-persistence"],
)
def test_queued_merges_survive_a_broker_kill_only_with_the_append_only_file(
    persistence, overrides, survive, own_redis, campaign, worker_env, workers, queue_name
):
    regions = merge_ready_regions(campaign, 5)
    ids = [r.pk for r in regions]
    server = own_redis(*overrides)
    _queue_merges(server.url, queue_name, ids)  # no worker runs yet
    assert _queue_length(server.url, queue_name) == 5
    time.sleep(0.2)  # nothing more than a killed process would let the kernel keep
    server.kill()
    server.start()  # same port, same folder
    kept = _queue_length(server.url, queue_name)
    if not survive:
        # The check this test makes would catch a broker without persistence: all 5 are gone.
        assert kept == 0, persistence
        return
    assert kept == 5, persistence
    env = dict(worker_env, CELERY_BROKER_URL=server.url)
    workers.start(env, queue_name, "after-restart")
    wait_for(
        lambda: ConsensusRun.objects.filter(region_id__in=ids).count() == 5,
        90,
        0.2,
        "every queued merge after the broker restart",
    )
    assert sorted(ConsensusRun.objects.values_list("region_id", flat=True)) == sorted(ids)
    wait_for(lambda: _queue_length(server.url, queue_name) == 0, 10, 0.2, "an empty queue")


class _Published:
    """Every task message this process hands to the broker (after the publish returned)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list]] = []

    def __call__(self, sender: str | None = None, body: object = None, **_: object) -> None:
        self.messages.append((sender, list(body[0])))


@pytest.fixture
def published():
    recorder = _Published()
    after_task_publish.connect(recorder, weak=False)
    yield recorder
    after_task_publish.disconnect(recorder)


def test_a_slide_registered_in_a_rolled_back_transaction_queues_no_ingest(slides_dir, published):
    path = str(slides_dir / "cmu-1-small-region.svs")
    with pytest.raises(RuntimeError), transaction.atomic():
        slide_register(path=path)
        raise RuntimeError("the request failed after registering")
    assert not Slide.objects.exists()
    assert published.messages == []
    # The same call, committed, does reach the broker: the check above can fail.
    slide, _ = slide_register(path=path)
    assert published.messages == [("slides.ingest_slide", [slide.pk])]


def test_a_kth_submission_rolled_back_queues_no_merge(campaign, published):
    project = campaign["project"]
    Project.objects.filter(pk=project.pk).update(redundancy_k=3)
    from tests.annotation.merge_helpers import region

    reg = region(project, campaign["slide"], 200, 200, 100)
    s0, s1, s2 = campaign["students"]
    submit(reg, s0, [(230, 230, 40)], campaign["tumour"])
    submit(reg, s1, [(230, 230, 40)], campaign["tumour"])
    assert published.messages == []
    with pytest.raises(RuntimeError), transaction.atomic():
        submit(reg, s2, [(234, 230, 40)], campaign["tumour"])  # the k-th: queues the merge
        raise RuntimeError("the request failed after the submit")
    assert Submission.objects.filter(region=reg).count() == 2
    assert published.messages == []
    submit(reg, s2, [(234, 230, 40)], campaign["tumour"])
    assert published.messages == [("annotation.merge_region", [reg.pk])]
