"""Rounds: the active-learning state machine of one project (owned by the learning app)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RoundState(models.TextChoices):
    """collecting -> training -> scoring -> proposing -> done (the next round is collecting)."""

    COLLECTING = "collecting", "Collecting labels"
    TRAINING = "training", "Training"
    SCORING = "scoring", "Scoring candidates"
    PROPOSING = "proposing", "Proposing the next round"
    DONE = "done", "Done"


class RoundTrigger(models.TextChoices):
    QUOTA = "quota", "Round quota of accepted regions met"
    MANAGER = "manager", "Started by a manager"


class Round(models.Model):
    """Round ``number`` of a project. Exactly one round per project is not done.

    A step (training, scoring, proposing) is claimed with a conditional update on ``state``, so
    two deliveries of the same task never both act. ``step_attempts`` counts deliveries of the
    current step (the poison-task cap); ``failed_reason`` is set when a step gave up, and a
    manager's retry clears it. ``progress`` is what the project page shows for the running step.
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="rounds"
    )
    number = models.PositiveIntegerField()
    state = models.CharField(
        max_length=12, choices=RoundState.choices, default=RoundState.COLLECTING, db_index=True
    )
    trigger = models.CharField(max_length=8, choices=RoundTrigger.choices, blank=True, default="")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_version = models.ForeignKey(
        "learning.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The version this round scored and proposed with.",
    )
    step_attempts = models.PositiveSmallIntegerField(default=0)
    step_started_at = models.DateTimeField(null=True, blank=True)
    failed_reason = models.TextField(blank=True, default="")
    progress = models.JSONField(default=dict, blank=True)
    stage_seconds = models.JSONField(
        default=dict, blank=True, help_text="Wall time of each finished step, by state name."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    advanced_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="one_round_per_number"),
            models.UniqueConstraint(
                fields=["project"],
                condition=~models.Q(state="done"),
                name="one_open_round_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"round {self.number} of project {self.project_id}: {self.state}"

    @property
    def failed(self) -> bool:
        return bool(self.failed_reason)
