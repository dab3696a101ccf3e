"""Training runs: a chain of bounded chunks under a database lease, ending in a model version.

Chunk ``n`` of run ``r`` is the task ``learning.train_chunk(r, n)``. It claims the run's lease
with a conditional update (``chunks == n`` and no live lease), trains for at most
``chunk_seconds`` from the run's checkpoint, then either queues chunk ``n + 1`` or registers the
model version. A second delivery of chunk ``n`` finds the lease held (and waits for it to lapse:
the first delivery may have died) or ``chunks > n`` (stale: nothing to do). A chunk killed
mid-epoch resumes from the last epoch's checkpoint.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from annotation.models import Project
from learning.data import PatchCache
from learning.models import ModelVersion, Round, RoundState, RunStatus, TrainingRun
from learning.models.runs import ACTIVE_RUN_STATES
from learning.networks import UNetConfig, load_weights
from learning.services import rounds as round_services
from learning.services.training_data import (
    TrainingSet,
    training_cache_build,
    training_cache_exists,
    training_cache_open,
    training_set_collect,
)
from learning.training import ProgressEvent, TrainConfig, train

logger = logging.getLogger(__name__)

TRAIN_TASK = "learning.train_chunk"


class TrainingError(ValueError):
    """The run cannot train (no classes, no patches); it fails with this reason."""


class ChunkOutcome(enum.StrEnum):
    CONTINUED = "continued"
    FINISHED = "finished"
    BUSY = "busy"
    STALE = "stale"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class ChunkResult:
    outcome: ChunkOutcome
    retry_in: float = 0.0
    version_id: int | None = None


def chunk_seconds() -> float:
    """How long one chunk may train: well inside the task's time limit and the lease."""
    return float(settings.LEARNING_CHUNK_SECONDS or max(2, settings.CELERY_TASK_TIME_LIMIT // 3))


def lease_duration() -> dt.timedelta:
    """A chunk's lease; renewed after every epoch, so only a dead chunk's lease lapses."""
    seconds = settings.LEARNING_LEASE_SECONDS or settings.CELERY_TASK_TIME_LIMIT + 5
    return dt.timedelta(seconds=seconds)


def _workdir(run: TrainingRun) -> Path:
    # A random part too: ids can come back after a rolled-back transaction (SQLite), and a
    # checkpoint must never be resumed by a run it does not belong to.
    name = f"run_{run.pk}_{uuid.uuid4().hex[:8]}"
    return Path(settings.MEDIA_ROOT) / "learning" / f"project_{run.project_id}" / name


def _collect(project: Project, round_number: int, patch_size: int) -> TrainingSet:
    """The project's training set as a round sees it (split seeded by the round's number)."""
    return training_set_collect(
        project=project,
        patch_size=patch_size,
        val_fraction=settings.LEARNING_VAL_FRACTION,
        seed=settings.LEARNING_SEED + round_number,
    )


def _create_run(**fields: Any) -> TrainingRun:
    """A queued run with its own working folder (which needs the run's id)."""
    run = TrainingRun.objects.create(status=RunStatus.QUEUED, **fields)
    run.workdir = str(_workdir(run))
    run.save(update_fields=["workdir"])
    return run


def train_config(*, num_classes: int, seed: int) -> TrainConfig:
    """The training hyper-parameters from settings (environment)."""
    network = UNetConfig(
        num_classes=num_classes,
        depth=settings.LEARNING_DEPTH,
        base_width=settings.LEARNING_BASE_WIDTH,
    )
    return TrainConfig(
        network=network,
        epochs=settings.LEARNING_EPOCHS,
        batch_size=settings.LEARNING_BATCH_SIZE,
        patience=settings.LEARNING_PATIENCE,
        seed=seed,
        device=settings.LEARNING_DEVICE,
    )


def latest_version(project_id: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(project_id=project_id).order_by("-number").first()


def training_run_begin(*, round: Round) -> TrainingRun:
    """Inside the collecting -> training transition: queue a run, or skip it when the training
    set's hash equals the latest version's (the round then scores with that version)."""
    project = round.project
    training = _collect(project, round.number, settings.LEARNING_PATCH_SIZE)
    if len(training.class_ids) < 2:
        raise round_services.RoundError("the project has no label class to learn")
    base = latest_version(project.pk)
    config = train_config(num_classes=len(training.class_ids), seed=settings.LEARNING_SEED)
    fields: dict[str, Any] = {
        "project": project,
        "round": round,
        "base_version": base,
        "config": config.to_dict(),
        "dataset_hash": training.digest,
        "dataset": training.describe(),
        "epochs": config.epochs,
    }
    if base is not None and base.dataset_hash == training.digest:
        run = TrainingRun.objects.create(
            status=RunStatus.SKIPPED, finished_at=timezone.now(), **fields
        )
        logger.info("round %s: training data unchanged since v%s; skipped", round.pk, base.number)
        moved = round_services.round_transition(
            round_id=round.pk,
            from_state=RoundState.TRAINING,
            to_state=RoundState.SCORING,
            model_version=base,
        )
        round_services.round_enqueue_step(round=moved)
        return run
    run = _create_run(**fields)
    transaction.on_commit(lambda: current_app.send_task(TRAIN_TASK, args=[run.pk, 0]))
    return run


def _claim(run_id: int, chunk: int, token: str) -> bool:
    now = timezone.now()
    return bool(
        TrainingRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATES, chunks=chunk)
        .filter(Q(lease_expires__isnull=True) | Q(lease_expires__lt=now))
        .update(
            status=RunStatus.RUNNING,
            lease_token=token,
            lease_expires=now + lease_duration(),
            chunk_attempts=F("chunk_attempts") + 1,
            started_at=now,
        )
    )


def _release(run_id: int, token: str, **fields: Any) -> int:
    return TrainingRun.objects.filter(pk=run_id, lease_token=token).update(
        lease_token="", lease_expires=None, **fields
    )


def training_run_chunk(*, run_id: int, chunk: int) -> ChunkResult:
    """Run chunk ``chunk`` of the run, if it is due and nobody holds the lease."""
    token = uuid.uuid4().hex
    if not _claim(run_id, chunk, token):
        run = TrainingRun.objects.filter(pk=run_id).first()
        if run is None or run.status not in ACTIVE_RUN_STATES or run.chunks != chunk:
            return ChunkResult(ChunkOutcome.STALE)
        wait = (run.lease_expires - timezone.now()).total_seconds() if run.lease_expires else 1
        return ChunkResult(ChunkOutcome.BUSY, retry_in=max(1.0, wait + 1))
    run = TrainingRun.objects.select_related("project", "round", "base_version").get(pk=run_id)
    if run.cancel_requested:
        _finish_cancelled(run, token)
        return ChunkResult(ChunkOutcome.CANCELLED)
    if run.chunk_attempts > settings.CELERY_TASK_MAX_ATTEMPTS:
        reason = (
            f"chunk {chunk} was started {run.chunk_attempts - 1} times without finishing "
            "(its worker died each time?)"
        )
        training_run_fail(run_id=run_id, reason=reason, token=token)
        return ChunkResult(ChunkOutcome.FAILED)
    try:
        return _train_chunk(run, chunk, token)
    except TrainingError as exc:
        training_run_fail(run_id=run_id, reason=str(exc), token=token)
        return ChunkResult(ChunkOutcome.FAILED)
    except BaseException:
        # Let the next delivery (the task's retry) take the lease at once.
        _release(run_id, token)
        raise


def _caches(run: TrainingRun) -> tuple[PatchCache, PatchCache]:
    directory = Path(run.workdir) / "cache"
    if not training_cache_exists(directory):
        training = _collect(
            run.project,
            run.round.number if run.round else 0,
            run.dataset.get("patch_size", settings.LEARNING_PATCH_SIZE),
        )
        if training.digest != run.dataset_hash:
            # Answers changed between the round's start and the first chunk: train on what is
            # there now, and say so in the lineage.
            TrainingRun.objects.filter(pk=run.pk).update(
                dataset_hash=training.digest, dataset=training.describe()
            )
            run.dataset_hash, run.dataset = training.digest, training.describe()
        if not training.train_regions:
            raise TrainingError("no accepted region to train on")
        return training_cache_build(training=training, directory=directory)
    return training_cache_open(directory)


def _warm_start(run: TrainingRun, config: TrainConfig) -> dict[str, Any] | None:
    base = run.base_version
    if base is None:
        return None
    model, _ = load_weights(Path(settings.MEDIA_ROOT) / base.weights_path)
    if model.config != config.network:
        logger.info("run %s: architecture changed since v%s; cold start", run.pk, base.number)
        return None
    return model.state_dict()


def _train_chunk(run: TrainingRun, chunk: int, token: str) -> ChunkResult:
    config = TrainConfig.from_dict(run.config)
    train_cache, val_cache = _caches(run)
    if len(train_cache) == 0:
        raise TrainingError("the accepted regions gave no training patch")
    workdir = Path(run.workdir)
    history = list(run.history)
    round_id = run.round_id

    def on_epoch(event: ProgressEvent) -> None:
        row = {
            "epoch": event.epoch,
            "loss": round(event.loss, 5),
            "val_dice": round(event.val_dice, 5),
            "images_per_s": round(event.images_per_s, 1),
            "chunk": chunk,
            "attempt": run.chunk_attempts,  # > 1: this chunk resumed after a lost delivery
        }
        # A chunk killed after reporting an epoch but before checkpointing it trains that
        # epoch again: the new row replaces the old one.
        history[:] = [h for h in history if h["epoch"] < event.epoch]
        history.append(row)
        TrainingRun.objects.filter(pk=run.pk, lease_token=token).update(
            epoch=event.epoch, history=history, lease_expires=timezone.now() + lease_duration()
        )
        if round_id is not None:
            progress = {**row, "epochs": event.epochs, "run": run.pk}
            round_services.round_set_progress(
                round_id=round_id, state=RoundState.TRAINING, progress=progress
            )

    result = train(
        config,
        train_cache,
        val_cache,
        workdir / "checkpoint.pt",
        progress=on_epoch,
        weights_path=workdir / "weights.pt",
        weights_metadata={"project": run.project_id, "training_run": run.pk},
        max_seconds=chunk_seconds(),
        init_state_dict=_warm_start(run, config) if chunk == 0 else None,
    )
    if not result.finished:
        with transaction.atomic():
            if _release(run.pk, token, chunks=chunk + 1, chunk_attempts=0, epoch=result.epoch):
                transaction.on_commit(
                    lambda: current_app.send_task(TRAIN_TASK, args=[run.pk, chunk + 1])
                )
        return ChunkResult(ChunkOutcome.CONTINUED)
    version = _register_version(run, token, result.metrics or {})
    return ChunkResult(ChunkOutcome.FINISHED, version_id=version.pk if version else None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _register_version(run: TrainingRun, token: str, metrics: dict[str, Any]) -> ModelVersion | None:
    """Publish the weights, then the row, the run's end and the round's move in one commit."""
    media = Path(settings.MEDIA_ROOT)
    relative = (
        Path("learning") / f"project_{run.project_id}" / "models" / f"{Path(run.workdir).name}.pt"
    )
    final = media / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    # The checkpoint says finished only after weights.pt was written; a rerun finds it there or
    # already moved into place.
    source = Path(run.workdir) / "weights.pt"
    if source.exists():
        os.replace(source, final)
    if not final.exists():
        raise TrainingError("the finished run left no weights file")
    dataset = run.dataset
    history = metrics.get("history", [])
    try:
        with transaction.atomic():
            number = (
                ModelVersion.objects.filter(project_id=run.project_id).aggregate(n=Max("number"))[
                    "n"
                ]
                or 0
            ) + 1
            version = ModelVersion.objects.create(
                project_id=run.project_id,
                number=number,
                training_run=run,
                parent=run.base_version,
                weights_path=str(relative),
                weights_sha256=_sha256(final),
                hyperparameters=run.config,
                dataset_hash=run.dataset_hash,
                consensus_runs=dataset.get("consensus_runs", []),
                adjudications=dataset.get("adjudications", []),
                train_regions=dataset.get("train_regions", []),
                val_regions=dataset.get("val_regions", []),
                class_ids=dataset.get("class_ids", []),
                target_mpp=dataset.get("target_mpp", run.project.target_mpp),
                patch_size=dataset.get("patch_size", settings.LEARNING_PATCH_SIZE),
                metrics={k: v for k, v in metrics.items() if k != "history"},
                learning_curve=history,
            )
            TrainingRun.objects.filter(pk=run.pk).update(
                status=RunStatus.FINISHED,
                lease_token="",
                lease_expires=None,
                chunks=F("chunks") + 1,
                chunk_attempts=0,
                finished_at=timezone.now(),
                epoch=metrics.get("epochs_run", run.epoch),
            )
            if run.round_id is not None:
                moved = round_services.round_transition(
                    round_id=run.round_id,
                    from_state=RoundState.TRAINING,
                    to_state=RoundState.SCORING,
                    model_version=version,
                )
                if moved is not None:
                    round_services.round_enqueue_step(round=moved)
    except IntegrityError:
        # A parallel delivery registered this run's version first.
        return ModelVersion.objects.filter(training_run=run).first()
    logger.info("run %s registered model v%s (%s)", run.pk, version.number, metrics.get("dice"))
    return version


def training_run_fail(*, run_id: int, reason: str, token: str | None = None) -> None:
    """End the run as failed with a reason; its round shows the reason and a retry button."""
    rows = TrainingRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATES)
    if token is not None:
        rows = rows.filter(lease_token=token)
    run = rows.first()
    if run is None:
        return
    rows.update(
        status=RunStatus.FAILED,
        failed_reason=reason[:2000],
        lease_token="",
        lease_expires=None,
        finished_at=timezone.now(),
    )
    if run.round_id is not None:
        round_services.round_fail(round_id=run.round_id, state=RoundState.TRAINING, reason=reason)


def _finish_cancelled(run: TrainingRun, token: str) -> None:
    with transaction.atomic():
        _release(run.pk, token, status=RunStatus.CANCELLED, finished_at=timezone.now())
        if run.round_id is not None:
            round_services.round_transition(
                round_id=run.round_id,
                from_state=RoundState.TRAINING,
                to_state=RoundState.COLLECTING,
            )


def training_run_cancel(*, run: TrainingRun, user: object) -> TrainingRun:
    """Cancel an active run: at once when no chunk holds it, else when its chunk ends."""
    if run.status not in ACTIVE_RUN_STATES:
        raise round_services.RoundError(f"the run is {run.status}: nothing to cancel")
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    token = uuid.uuid4().hex
    now = timezone.now()
    idle = (
        TrainingRun.objects.filter(pk=run.pk, status__in=ACTIVE_RUN_STATES)
        .filter(Q(lease_expires__isnull=True) | Q(lease_expires__lt=now))
        .update(lease_token=token, lease_expires=now + lease_duration())
    )
    if idle:
        _finish_cancelled(run, token)
    logger.info("run %s cancelled by user %s", run.pk, getattr(user, "pk", None))
    run.refresh_from_db()
    return run


def training_run_retry(*, round: Round) -> TrainingRun | None:
    """After a failed run: a new run of the same round (resuming is not possible: it failed)."""
    failed = (
        TrainingRun.objects.filter(round=round, status=RunStatus.FAILED).order_by("-id").first()
    )
    if failed is None:
        return None
    return _create_run(
        project=round.project,
        round=round,
        base_version=failed.base_version,
        config=failed.config,
        dataset_hash=failed.dataset_hash,
        dataset=failed.dataset,
        epochs=failed.epochs,
    )


def training_run_requeue_stalled() -> int:
    """Periodic safety net: queue the due chunk of running runs whose lease lapsed (a lost
    message, a worker that died before redelivery). Returns how many were queued."""
    now = timezone.now()
    stalled = TrainingRun.objects.filter(status__in=ACTIVE_RUN_STATES).filter(
        Q(lease_expires__lt=now)
        | Q(lease_expires__isnull=True, created_at__lt=now - lease_duration())
    )
    count = 0
    for run in stalled:
        current_app.send_task(TRAIN_TASK, args=[run.pk, run.chunks])
        count += 1
    return count
