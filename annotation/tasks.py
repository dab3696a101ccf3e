"""Celery tasks of the annotation app: thin wrappers that load by id and call one service."""

from __future__ import annotations

from celery import shared_task

from annotation.services import merge
from config.tasks import DatabaseTask


@shared_task(name="annotation.merge_region", base=DatabaseTask)
def merge_region(region_id: int) -> int | None:
    """Merge a region's counted submissions (queue ``consensus``); returns the run id or None."""
    run = merge.merge_region(region_id=region_id)
    return run.pk if run is not None else None
