"""Ingest through a real Celery worker on a real broker: bad files, and a worker killed mid-task."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from slides.models import Slide, SlideStatus
from slides.services import slide_register
from tests.worker import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live_worker]


def _status(slide_id: int) -> str:
    return Slide.objects.values_list("status", flat=True).get(pk=slide_id)


def _settled(slide_id: int) -> bool:
    return _status(slide_id) != SlideStatus.PENDING


def _bad_files(slides_dir: Path, target: Path) -> dict[str, Path]:
    target.mkdir(parents=True, exist_ok=True)
    empty = target / "empty.svs"
    empty.write_bytes(b"")
    noise = target / "noise.svs"
    noise.write_bytes(os.urandom(256 * 1024))
    truncated = target / "truncated-cmu.svs"
    original = (slides_dir / "cmu-1-small-region.svs").read_bytes()
    truncated.write_bytes(original[: len(original) // 2])
    return {
        "empty": empty,
        "noise": noise,
        "truncated": truncated,
        "unreadable dicom": slides_dir / "unreadable" / "small_dicom.dcm",
    }


@pytest.mark.smoke
def test_bad_slides_end_failed_with_a_reason_and_the_worker_keeps_working(live_worker, slides_dir):
    target = Path(settings.SLIDE_ROOTS[-1]) / "bad-inputs"
    bad = {
        label: slide_register(path=str(p))[0].pk
        for label, p in _bad_files(slides_dir, target).items()
    }
    for label, slide_id in bad.items():
        wait_for(lambda sid=slide_id: _settled(sid), 120, message=f"{label} to settle")
        slide = Slide.objects.get(pk=slide_id)
        assert slide.status == SlideStatus.FAILED, label
        assert len(slide.status_reason) > 10, label
    reasons = dict(Slide.objects.filter(pk__in=bad.values()).values_list("pk", "status_reason"))
    assert "empty" in reasons[bad["empty"]]
    assert "Couldn't get image flavor" in reasons[bad["unreadable dicom"]]
    assert live_worker.process.poll() is None, live_worker.log_tail()

    # The same worker then ingests a good slide.
    good, _ = slide_register(path=str(slides_dir / "hamamatsu-tritc.ndpi"))
    wait_for(lambda: _settled(good.pk), 120, message="the good slide")
    assert _status(good.pk) == SlideStatus.READY


def test_pool_child_killed_mid_ingest_still_ends_ready_once(live_worker, tmp_path):
    from slides.synthetic import SyntheticSpec, write_synthetic_slide

    # Big enough that ingest (checksum, thumbnail, thousands of tiles) takes seconds.
    files = write_synthetic_slide(
        Path(settings.SLIDE_ROOTS[-1]) / "kill-test", "kill", SyntheticSpec(4096, 4096, seed=3)
    )
    slide, _ = slide_register(path=str(files.slide))

    def started() -> bool:
        return Slide.objects.filter(pk=slide.pk, ingest_attempts=1, status="pending").exists()

    wait_for(started, 60, 0.02, "ingest to start")
    killed = live_worker.kill_pool_child()
    wait_for(lambda: _settled(slide.pk), 180, message="ingest to finish after the kill")

    slide.refresh_from_db()
    assert slide.status == SlideStatus.READY, (slide.status_reason, live_worker.log_tail())
    assert slide.ingest_attempts == 2  # the killed run and the redelivered one
    assert Slide.objects.filter(path=slide.path).count() == 1
    assert killed not in live_worker.pool_children()
    assert slide.tiles_prebuilt > 0
    tiles = list((settings.TILE_STORE_ROOT / str(slide.pk)).rglob("*.jpeg"))
    assert len(tiles) == slide.tiles_prebuilt  # each tile stored once, no temp files left
    assert not list((settings.TILE_STORE_ROOT / str(slide.pk)).rglob(".tmp-*"))
    shutil.rmtree(files.slide.parent, ignore_errors=True)


def test_whole_worker_killed_mid_ingest_is_redelivered_to_another_worker(live_worker, tmp_path):
    """SIGKILL of the main process too: nothing acks or rejects; the broker's visibility
    timeout hands the task to a worker started afterwards (a short one here, 10 s)."""
    from slides.synthetic import SyntheticSpec, write_synthetic_slide
    from tests.worker import LiveWorker

    if not live_worker.env["CELERY_BROKER_URL"].startswith("redis://"):
        pytest.skip("redelivery after a whole-worker kill needs the Redis transport")
    files = write_synthetic_slide(
        Path(settings.SLIDE_ROOTS[-1]) / "kill-whole",
        "killwhole",
        SyntheticSpec(4096, 4096, seed=5),
    )
    # A worker of its own that only this test's queue reaches: the session worker keeps
    # serving "default", so the doomed one listens on a queue named for this test.
    env = dict(live_worker.env, CELERY_VISIBILITY_TIMEOUT="10", CELERY_TASK_TIME_LIMIT="8")
    doomed = LiveWorker(env, tmp_path / "doomed.log", queues="killtest", name="doomed")
    doomed.start()
    from slides.tasks import ingest_slide

    slide, _ = slide_register(path=str(files.slide))
    # The session worker may pick up the on-commit message first; route a second copy to the
    # doomed worker and wait until one of the two has started.
    task_id = ingest_slide.apply_async(args=[slide.pk], queue="killtest").id
    wait_for(lambda: task_id in doomed.log_tail(20_000), 60, 0.02, "the doomed worker to take it")
    doomed.kill_whole()
    rescuer = LiveWorker(env, tmp_path / "rescuer.log", queues="killtest", name="rescuer")
    rescuer.start()
    try:
        wait_for(lambda: _settled(slide.pk), 150, message="ingest after the whole-worker kill")
        slide.refresh_from_db()
        assert slide.status == SlideStatus.READY, slide.status_reason
        assert Slide.objects.filter(path=slide.path).count() == 1
        # The killed message comes back within the short visibility timeout and is consumed.
        import redis

        client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
        prefix = settings.CELERY_REDIS_KEY_PREFIX
        wait_for(
            lambda: task_id in rescuer.log_tail(20_000),
            60,
            0.5,
            "the killed task to reach the rescuer",
        )
        wait_for(
            lambda: (
                client.llen(f"{prefix}killtest") == 0
                and client.zcard(f"{prefix}unacked_index") == 0
            ),
            60,
            0.5,
            "the redelivered task to be acked",
        )
    finally:
        rescuer.stop()
    shutil.rmtree(files.slide.parent, ignore_errors=True)


def test_two_ingests_of_one_slide_at_once_both_end_ready(slides_dir):
    """A redelivered ingest can run beside the original: neither may break the other."""
    import threading

    from django.db import connection

    from slides.services import slide_ingest

    slide, _ = slide_register(path=str(slides_dir / "hamamatsu-dapi.ndpi"))
    Slide.objects.filter(pk=slide.pk).update(ingest_attempts=0)
    barrier = threading.Barrier(2)
    errors = []

    def ingest() -> None:
        barrier.wait()
        try:
            slide_ingest(slide_id=slide.pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    slide.refresh_from_db()
    assert not errors
    assert slide.status == SlideStatus.READY, slide.status_reason
    assert not list(Path(slide.thumbnail).parent.glob(".*.tmp"))
