"""Celery tasks of the slides app: thin wrappers that load by id and call one service."""

from __future__ import annotations

from celery import shared_task

from config.tasks import DatabaseTask
from slides import services


@shared_task(name="slides.ingest_slide", base=DatabaseTask)
def ingest_slide(slide_id: int) -> str | None:
    """Ingest one slide; returns its final status (or None when the row is gone)."""
    slide = services.slide_ingest(slide_id=slide_id)
    return slide.status if slide is not None else None
