"""Training runs (a chain of bounded chunks under a database lease) and the model versions
they register."""

from __future__ import annotations

from typing import Any

from django.db import models


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    SKIPPED = "skipped", "Skipped (training data unchanged)"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


ACTIVE_RUN_STATES = (RunStatus.QUEUED, RunStatus.RUNNING)


class TrainingRun(models.Model):
    """One training of a project's network, run as chunks; at most one active per project.

    A chunk holds the lease (``lease_token`` until ``lease_expires``) while it trains; a second
    delivery finds the lease held and returns, a chunk whose worker died leaves the lease to
    expire and the next delivery resumes from ``checkpoint_path``. ``dataset_hash`` covers the
    training set (regions, their answers, patch geometry); a run whose hash equals the latest
    version's is skipped. ``history`` holds one row per epoch (loss, validation Dice, images/s).
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="training_runs"
    )
    round = models.ForeignKey(
        "learning.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    base_version = models.ForeignKey(
        "learning.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Warm start: the previous version's weights.",
    )
    config = models.JSONField(default=dict, help_text="TrainConfig as a dict.")
    dataset_hash = models.CharField(max_length=64, blank=True, default="")
    dataset = models.JSONField(
        default=dict,
        blank=True,
        help_text="{train_regions, val_regions, consensus_runs, adjudications, class_ids, ...}",
    )
    workdir = models.CharField(max_length=300, blank=True, default="")
    lease_token = models.CharField(max_length=64, blank=True, default="")
    lease_expires = models.DateTimeField(null=True, blank=True)
    chunks = models.PositiveIntegerField(default=0, help_text="Chunks that finished.")
    chunk_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Deliveries of the current chunk (poison cap)."
    )
    epoch = models.PositiveIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, blank=True)
    cancel_requested = models.BooleanField(default=False)
    failed_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_run_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} of project {self.project_id}: {self.status}"


class ModelVersion(models.Model):
    """An immutable trained network: weights, hyper-parameters, data lineage and metrics.

    The weights file is written (atomically, then hashed) before the row is inserted, so a
    visible version always has its weights. ``class_ids`` maps the network's output index to a
    LabelClass id (index 0 background, may be null). ``consensus_runs`` and ``adjudications``
    are the answers it learnt from (lineage).
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="model_versions"
    )
    number = models.PositiveIntegerField()
    training_run = models.OneToOneField(
        TrainingRun, on_delete=models.PROTECT, related_name="model_version"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    weights_path = models.CharField(max_length=300, help_text="Under MEDIA_ROOT.")
    weights_sha256 = models.CharField(max_length=64)
    hyperparameters = models.JSONField(default=dict)
    dataset_hash = models.CharField(max_length=64)
    consensus_runs = models.JSONField(default=list, help_text="ConsensusRun ids trained on.")
    adjudications = models.JSONField(default=list, help_text="Adjudication ids trained on.")
    train_regions = models.JSONField(default=list)
    val_regions = models.JSONField(default=list)
    class_ids = models.JSONField(default=list)
    target_mpp = models.FloatField()
    patch_size = models.PositiveIntegerField()
    metrics = models.JSONField(
        default=dict, help_text="{dice: [per class], mean_dice, ece, best_epoch, epochs_run}"
    )
    learning_curve = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="one_version_per_number")
        ]

    def __str__(self) -> str:
        return f"model v{self.number} of project {self.project_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("a model version is immutable; train again to get a new one")
        super().save(*args, **kwargs)
