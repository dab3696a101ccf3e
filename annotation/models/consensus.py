"""Consensus runs (immutable merge results), merge jobs (attempt caps) and annotator reliability."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from annotation.models.projects import LabelClass, Project
from annotation.models.regions import Region


class ConsensusStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    NEEDS_MORE = "needs_more", "Needs more annotators"
    NEEDS_ADJUDICATION = "needs_adjudication", "Needs expert adjudication"


class ConsensusRun(models.Model):
    """One merge of a region's counted submissions; never changed once written.

    ``inputs_hash`` is the sha256 of the sorted (submission id, version) list, the method and its
    parameters: the unique (region, inputs_hash) row makes a second merge of the same inputs a
    no-op. The arrays (label mask, posterior, vote shares) live in ``arrays_path`` under
    MEDIA_ROOT, written atomically before the row is inserted.
    """

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="consensus_runs")
    inputs_hash = models.CharField(max_length=64)
    inputs = models.JSONField(help_text="[[submission id, version, annotator id, outcome], ...]")
    method = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    class_ids = models.JSONField(
        help_text="LabelClass id of each compact class index (index 0: background, may be null)."
    )
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    downsample = models.FloatField(help_text="Level-0 pixels per mask pixel.")
    arrays_path = models.CharField(max_length=300, help_text="npz under MEDIA_ROOT.")
    arrays_digest = models.CharField(max_length=64, help_text="sha256 of the arrays' bytes.")
    polygons = models.JSONField(
        default=list, help_text="[{label_class, geometry}] level-0 GeoJSON."
    )
    class_dice = models.JSONField(default=dict, help_text="{class index: mean pairwise Dice}.")
    dice = models.FloatField(help_text="Mean pairwise Dice over the classes anyone marked.")
    fleiss_kappa = models.FloatField(null=True, blank=True)
    rater_scores = models.JSONField(default=list)
    contested_fraction = models.FloatField()
    contested_pixels = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=ConsensusStatus.choices, db_index=True)
    region_label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    region_label_posterior = models.JSONField(null=True, blank=True)
    iterations = models.PositiveIntegerField(default=0)
    converged = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["region", "inputs_hash"], name="one_run_per_inputs")
        ]
        ordering = ["region_id", "created_at", "id"]
        indexes = [models.Index(fields=["region", "-created_at"])]

    def __str__(self) -> str:
        return f"consensus {self.pk} of region {self.region_id}: {self.status}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("a consensus run is immutable; merge again to get a new one")
        super().save(*args, **kwargs)


class ConsensusJob(models.Model):
    """Attempts at merging one set of inputs: the started marker and the poison-task cap."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    inputs_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    failed_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["region", "inputs_hash"], name="one_job_per_inputs")
        ]


class ReliabilitySource(models.TextChoices):
    STAPLE = "staple", "Estimated by STAPLE across merges"
    GOLD = "gold", "Measured against experts on gold regions"


class AnnotatorReliability(models.Model):
    """An annotator's running sensitivity/specificity (and confusion matrix) in one project.

    ``evidence`` keeps each region's expected pixel counts ``[true][said]`` by region id, so a
    re-merge replaces that region's share instead of counting it twice; the figures are the
    pooled counts, normalised.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reliabilities")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    source = models.CharField(max_length=8, choices=ReliabilitySource.choices)
    sensitivity = models.FloatField(null=True, blank=True)
    specificity = models.FloatField(null=True, blank=True)
    confusion = models.JSONField(default=list, help_text="[true][said] rows, compact classes.")
    n_regions = models.PositiveIntegerField(default=0)
    evidence = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotator", "source"], name="one_reliability_per_source"
            )
        ]
        ordering = ["project_id", "annotator_id", "source"]
