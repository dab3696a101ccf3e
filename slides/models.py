"""Slides: one row per whole-slide image file, plus the data-governance access record."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SlideStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class MppSource(models.TextChoices):
    FILE = "file", "From the file"
    MANUAL = "manual", "Entered by a manager"
    NONE = "none", "Unknown"


class Slide(models.Model):
    """A whole-slide image read in place from a configured slide root, as one project holds it."""

    name = models.CharField(max_length=255)
    # Not unique: a row belongs to one project (annotation.ProjectSlide), so the same file
    # registered in two projects is two rows, each with its own mpp, ingest and access log.
    path = models.CharField(
        max_length=4096, db_index=True, help_text="Absolute path on the server."
    )
    uploaded = models.BooleanField(default=False)
    case_key = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        help_text="Case or patient key: exports never split one case across splits.",
    )
    status = models.CharField(
        max_length=16, choices=SlideStatus.choices, default=SlideStatus.PENDING, db_index=True
    )
    status_reason = models.TextField(blank=True, default="")
    ingest_attempts = models.PositiveSmallIntegerField(default=0)

    vendor = models.CharField(max_length=64, blank=True, default="")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    level_count = models.PositiveSmallIntegerField(null=True, blank=True)
    level_dimensions = models.JSONField(default=list, blank=True)
    level_downsamples = models.JSONField(default=list, blank=True)
    mpp_x = models.FloatField(null=True, blank=True)
    mpp_y = models.FloatField(null=True, blank=True)
    mpp_source = models.CharField(max_length=8, choices=MppSource.choices, default=MppSource.NONE)
    objective_power = models.FloatField(null=True, blank=True)
    associated_images = models.JSONField(default=list, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=64, blank=True, default="", help_text="SHA-256.")
    thumbnail = models.CharField(max_length=1024, blank=True, default="")
    tissue_mask = models.CharField(max_length=1024, blank=True, default="")
    tissue_fraction = models.FloatField(null=True, blank=True)
    deepzoom = models.JSONField(
        default=dict,
        blank=True,
        help_text="Deep-zoom grid: tile size, overlap, per-level dimensions and tile counts.",
    )
    tiles_prebuilt = models.PositiveIntegerField(default=0)
    tiles_prebuild_seconds = models.FloatField(null=True, blank=True)
    tiles_prebuild_bytes = models.BigIntegerField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def mpp(self) -> float | None:
        if self.mpp_x and self.mpp_y:
            return (self.mpp_x + self.mpp_y) / 2
        return self.mpp_x or self.mpp_y


class SlideAccess(models.Model):
    """Who opened which slide on which day (data governance); one row per (user, slide, day)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    slide = models.ForeignKey(Slide, on_delete=models.CASCADE, related_name="accesses")
    day = models.DateField()
    first_seen = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "slide", "day"], name="one_access_per_day")
        ]
        ordering = ["-day", "slide_id"]
