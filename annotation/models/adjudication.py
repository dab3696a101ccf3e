"""Expert adjudication: a decision on a region that supersedes its machine consensus."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from annotation.models.consensus import ConsensusRun
from annotation.models.regions import Region


class AdjudicationDecision(models.TextChoices):
    ACCEPT = "accept", "Accept the consensus as is"
    EDIT = "edit", "Edit the consensus"
    REDRAW = "redraw", "Redraw from scratch"


class Adjudication(models.Model):
    """One expert decision on a region; never changed once written, the newest one is current.

    The rows are the audit trail: a second decision is a new row (who, why, what, based on which
    consensus run). ``shapes`` is the answer, ``[{label_class, geometry}]`` in level-0 GeoJSON,
    cleaned against the region. ``inputs_hash`` is that of the run the expert saw ("" when there
    was none). ``stale_run`` is the one field written later: a re-merge whose inputs differ from
    ``inputs_hash`` sets it instead of replacing the answer, so the expert reviews the region.
    """

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="adjudications")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.CharField(max_length=8, choices=AdjudicationDecision.choices)
    reason = models.TextField()
    shapes = models.JSONField(default=list, help_text="[{label_class, geometry}] level-0 GeoJSON.")
    based_on = models.ForeignKey(
        ConsensusRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    inputs_hash = models.CharField(max_length=64, blank=True, default="")
    rater_scores = models.JSONField(
        default=list, help_text="[{annotator, submission, dice}] against this decision."
    )
    stale_run = models.ForeignKey(
        ConsensusRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A later merge of changed inputs: to be reviewed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["region_id", "-created_at", "-id"]
        indexes = [models.Index(fields=["region", "-created_at"])]

    def __str__(self) -> str:
        return f"adjudication {self.pk} of region {self.region_id}: {self.decision}"

    @property
    def needs_review(self) -> bool:
        return self.stale_run_id is not None

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("an adjudication is immutable; decide again to get a new one")
        super().save(*args, **kwargs)
