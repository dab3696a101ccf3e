"""Regions: the annotation unit, a level-0 rectangle on a slide of the project."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.projects import Project


class RegionOrigin(models.TextChoices):
    SEEDED = "seeded", "Seeded from tissue"
    MANUAL = "manual", "Drawn by a manager"
    GOLD = "gold", "Gold standard"
    PROPOSED = "proposed", "Proposed by the model"


class RegionStatus(models.TextChoices):
    OPEN = "open", "Open for annotation"
    CLOSED = "closed", "Closed"


class Region(models.Model):
    """A rectangle ``[x, x + width) x [y, y + height)`` in level-0 pixels of ``slide``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="regions")
    slide = models.ForeignKey("slides.Slide", on_delete=models.CASCADE, related_name="regions")
    x = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    origin = models.CharField(max_length=10, choices=RegionOrigin.choices, db_index=True)
    round_number = models.PositiveIntegerField(default=0, db_index=True)
    learning_ref = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="Filled by the learning app (e.g. the proposal that created the region).",
    )
    extra_slots = models.PositiveSmallIntegerField(
        default=0, help_text="Annotators asked for beyond the project's k after disagreement."
    )
    expert_requested = models.BooleanField(
        default=False,
        help_text="Sent to an expert by the learning app's routing (contested and uncertain).",
    )
    status = models.CharField(
        max_length=8, choices=RegionStatus.choices, default=RegionStatus.OPEN, db_index=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "round_number", "id"]
        indexes = [models.Index(fields=["project", "status", "origin"])]

    def __str__(self) -> str:
        return f"region {self.pk} on slide {self.slide_id}"

    @property
    def is_gold(self) -> bool:
        return self.origin == RegionOrigin.GOLD

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in level-0 pixels."""
        return (self.x, self.y, self.x + self.width, self.y + self.height)
