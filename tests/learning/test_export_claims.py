"""Claiming an export's build: once, under a lease, with an attempts cap (services directly)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from annotation.models import LabelClass
from learning.exports.services import export_build, lease_remaining
from learning.models import ExportStatus, TrainingExport
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(db):
    project = make_project(make_user("mgr"))
    LabelClass.objects.create(project=project, name="gland", order=1)
    return TrainingExport.objects.create(project=project, config={})


def test_a_build_whose_worker_died_each_time_ends_failed_after_the_cap(queued):
    cap = settings.CELERY_TASK_MAX_ATTEMPTS
    TrainingExport.objects.filter(pk=queued.pk).update(attempts=cap)
    export = export_build(export_id=queued.pk)
    assert export.status == ExportStatus.FAILED and f"{cap} attempts" in export.failed_reason
    assert export.file_path == "" and export.attempts == cap


def test_a_live_lease_keeps_a_second_delivery_out_and_an_expired_one_lets_it_take_over(queued):
    held = timezone.now() + dt.timedelta(minutes=5)
    TrainingExport.objects.filter(pk=queued.pk).update(
        status=ExportStatus.BUILDING, attempts=1, lease_token="other", lease_expires=held
    )
    folder = Path(settings.MEDIA_ROOT) / "exports" / str(queued.project_id)
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / f".tmp-{queued.pk}-other.zip"
    stale.write_bytes(b"half an archive")
    export = export_build(export_id=queued.pk)
    assert export.status == ExportStatus.BUILDING and export.attempts == 1
    assert 0 < lease_remaining(queued.pk) <= 300 and stale.exists()

    expired = timezone.now() - dt.timedelta(seconds=1)
    TrainingExport.objects.filter(pk=queued.pk).update(lease_expires=expired)
    export = export_build(export_id=queued.pk)
    assert export.status == ExportStatus.READY and export.attempts == 2
    assert not stale.exists()  # the dead build's temporary file is gone
    assert export_build(export_id=queued.pk).finished_at == export.finished_at  # done: no-op


def test_a_build_of_a_vanished_export_returns_quietly(db):
    assert export_build(export_id=987654) is None
