"""The export task: load by id, call one service; retry while another delivery holds the lease."""

from __future__ import annotations

from celery import shared_task

from learning.exports import services


@shared_task(name=services.EXPORT_TASK, bind=True, max_retries=5)
def export_build(self: object, export_id: int) -> str | None:
    """Build an export (queue ``default``); returns its hash, or None when not built here."""
    export = services.export_build(export_id=export_id)
    if export is None:
        return None
    if export.status == "building":
        # Another delivery holds the lease; if its worker died, the lease runs out and a
        # retry then takes the build over.
        remaining = services.lease_remaining(export_id)
        if remaining is not None:
            raise self.retry(countdown=int(remaining) + 1)
    return export.export_hash or None
