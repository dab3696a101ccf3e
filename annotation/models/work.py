"""Assignments and what annotators submit: one versioned submission per (region, annotator)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.projects import LabelClass, Project
from annotation.models.regions import Region


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released by a manager"


class Assignment(models.Model):
    """One slot of a region given to one annotator. A student never gets a region twice."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=10,
        choices=AssignmentStatus.choices,
        default=AssignmentStatus.ACTIVE,
        db_index=True,
    )
    assigned_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["region", "annotator"], name="one_slot_per_annotator")
        ]
        ordering = ["-assigned_at", "id"]
        indexes = [models.Index(fields=["annotator", "status"])]

    @property
    def counts(self) -> bool:
        """Whether the slot occupies one of the region's k places."""
        return self.status in (AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED)


class SubmissionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"


class Outcome(models.TextChoices):
    SHAPES = "shapes", "Shapes drawn"
    NOTHING = "nothing", "Nothing to label"
    CANNOT_ASSESS = "cannot_assess", "Cannot assess"


class Submission(models.Model):
    """An annotator's work on one region: a draft until submitted, then final for them.

    ``version`` rises by one on every write; clients send it back as If-Match, and writes are
    applied with ``UPDATE ... WHERE version = ?`` so a stale write gets 412, never a lost update.
    """

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="submissions")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="submission"
    )
    status = models.CharField(
        max_length=10,
        choices=SubmissionStatus.choices,
        default=SubmissionStatus.DRAFT,
        db_index=True,
    )
    outcome = models.CharField(max_length=14, choices=Outcome.choices, default=Outcome.SHAPES)
    cannot_assess_reason = models.CharField(max_length=300, blank=True, default="")
    region_label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    time_spent_seconds = models.FloatField(default=0)
    shown = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the annotator was shown (e.g. a prediction overlay).",
    )
    counts = models.BooleanField(default=True, help_text="False once its author is excluded.")
    gold_dice = models.FloatField(
        null=True, blank=True, help_text="Dice against the expert's outline, on gold regions."
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["region", "annotator"], name="one_submission_per_annotator"
            )
        ]
        ordering = ["region_id", "id"]


class Shape(models.Model):
    """One polygon or multipolygon (GeoJSON, level-0 pixels) with its class."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="shapes")
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+")
    geometry = models.JSONField()
    area = models.FloatField()
    vertex_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["submission_id", "id"]


class SubmissionHistory(models.Model):
    """Audit: every submitted or later changed submission, with who, when and why."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="history")
    version = models.PositiveIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=40)
    reason = models.TextField(blank=True, default="")
    snapshot = models.JSONField()

    class Meta:
        ordering = ["submission_id", "version", "id"]


class SlideAnnotation(models.Model):
    """A shape imported onto a slide from a named source (e.g. a prior expert's QuPath file)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imported_shapes")
    slide = models.ForeignKey("slides.Slide", on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=200)
    label_class = models.ForeignKey(LabelClass, on_delete=models.PROTECT, related_name="+")
    geometry = models.JSONField()
    area = models.FloatField()
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now_add=True)
    file_name = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["project_id", "slide_id", "id"]
