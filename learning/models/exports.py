"""Research exports: immutable, versioned training-set archives with their provenance."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class TrainingExport(models.Model):
    """One export of a project's accepted answers as a training set; never rebuilt once READY.

    ``config`` holds what the requester chose (classes, label policy, resolution, patches,
    split); the Celery task ``learning.export_build`` claims the row with a conditional UPDATE
    (``attempts`` caps a task that kills its worker), writes the archive to a temporary file,
    renames it into place and only then marks the row READY. ``export_hash`` is the sha256 of
    the archive's ``checksums.sha256``: the same inputs and seed give the same hash.
    ``consensus_runs``, ``adjudications`` and ``model_versions`` are the lineage.
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="training_exports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    config = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0, help_text="Share of regions written, 0 to 1.")
    progress_text = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_token = models.CharField(max_length=64, blank=True, default="")
    lease_expires = models.DateTimeField(null=True, blank=True)
    failed_reason = models.TextField(blank=True, default="")
    file_path = models.CharField(
        max_length=300, blank=True, default="", help_text="Under MEDIA_ROOT."
    )
    file_size = models.BigIntegerField(null=True, blank=True)
    export_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    consensus_runs = models.JSONField(default=list, blank=True)
    adjudications = models.JSONField(default=list, blank=True)
    model_versions = models.JSONField(default=list, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} of project {self.project_id}: {self.status}"
