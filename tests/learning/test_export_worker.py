"""The export task through a real Celery worker on the real broker: it runs once, publishes the
archive, and a second delivery of the same message changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from celery import current_app
from django.conf import settings

from learning.exports.services import EXPORT_TASK, export_create
from learning.models import ExportStatus, TrainingExport
from tests.learning.export_helpers import export_world
from tests.worker import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live_worker,
    pytest.mark.timeout(300),
]


def _succeeded(worker: object, export_id: int) -> int:
    """How many deliveries of this export's task the worker finished (from its log)."""
    log = worker.log_path.read_bytes().decode(errors="replace")
    ids = re.findall(r"Task learning\.export_build\[([0-9a-f-]+)\] received", log)
    return sum(1 for task_id in ids if f"Task learning.export_build[{task_id}] succeeded" in log)


def test_the_export_task_runs_once_through_the_live_worker_and_a_second_delivery_changes_nothing(
    live_worker,
):
    world = export_world(regions_per_slide=1)
    done_before = _succeeded(live_worker, 0)
    # Queued on commit by the service, like the page and the API do.
    export = export_create(
        project=world["project"], user=world["researcher"], data={"patch_size": 128}
    )
    wait_for(
        lambda: (
            TrainingExport.objects.get(pk=export.pk).status
            in (ExportStatus.READY, ExportStatus.FAILED)
        ),
        timeout=180,
        interval=0.5,
        message=f"export {export.pk} to finish; worker log: {live_worker.log_tail()}",
    )
    first = TrainingExport.objects.get(pk=export.pk)
    assert first.status == ExportStatus.READY, first.failed_reason
    assert first.attempts == 1 and first.progress == 1.0 and first.export_hash
    folder = Path(settings.MEDIA_ROOT) / "exports" / str(world["project"].pk)
    files = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}
    # (The folder may hold earlier tests' archives: project ids restart after a flush.)
    assert Path(first.file_path).name in files
    assert not [name for name in files if name.startswith(".tmp-")]  # no temporary file left

    current_app.send_task(EXPORT_TASK, args=[export.pk])  # a second delivery
    wait_for(
        lambda: _succeeded(live_worker, export.pk) >= done_before + 2,
        timeout=60,
        interval=0.3,
        message=f"the second delivery; worker log: {live_worker.log_tail()}",
    )
    again = TrainingExport.objects.get(pk=export.pk)
    fields = ("status", "attempts", "export_hash", "file_path", "file_size", "finished_at")
    assert [getattr(again, f) for f in fields] == [getattr(first, f) for f in fields]
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()} == files
    assert TrainingExport.objects.count() == 1
