"""Merging a region's submissions into an immutable consensus run; annotator reliability.

A merge is safe to run twice, concurrently, and to be killed:

- its inputs (the counted submitted submissions and their versions, the method and the
  project's settings) hash to ``inputs_hash``; a run with that hash already stored is the answer;
- a ``ConsensusJob`` row counts attempts (claimed with a conditional UPDATE), so a merge that
  kills its worker every time ends failed after CELERY_TASK_MAX_ATTEMPTS, not in a loop;
- the arrays are written to a temporary file and linked into place under a name that carries
  their digest, then the row is inserted in one transaction with the reliability update: the
  unique (region, inputs_hash) row decides which of two racing merges publishes, and the
  loser removes only its own file.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import (
    AnnotatorReliability,
    ConsensusJob,
    ConsensusRun,
    ConsensusStatus,
    LabelClass,
    Outcome,
    Project,
    Region,
    RegionOrigin,
    ReliabilitySource,
    Role,
    Submission,
    SubmissionStatus,
)
from annotation.rasterize import grid_shape, mask_to_geojson, rasterize_shapes
from annotation.region_merge import (
    NEEDS_MORE,
    Prior,
    RegionMerge,
    Thresholds,
    escalation_status,
    merge_masks,
)
from annotation.vote_patterns import NOT_RATED
from config.tasks import attempt_claim

logger = logging.getLogger(__name__)

MERGE_TASK = "annotation.merge_region"


class MergeError(ValueError):
    """The region cannot be merged (no slide resolution, no inputs)."""


# --- enqueueing ----------------------------------------------------------------------------


def merge_enqueue(*, region_ids: Iterable[int]) -> None:
    """Queue a merge of each region once the current transaction commits."""
    from celery import current_app

    for region_id in sorted(set(region_ids)):
        transaction.on_commit(lambda rid=region_id: current_app.send_task(MERGE_TASK, args=[rid]))


def _submitted(region: Region) -> int:
    return Submission.objects.filter(region=region, status=SubmissionStatus.SUBMITTED).count()


def merge_enqueue_if_complete(*, region: Region) -> bool:
    """After a submit: queue the merge when every slot of the region (k + extra) is submitted.

    Slots are counted over all submitted submissions, excluded authors included, because their
    assignments still hold slots; the merge itself uses only those that count.
    """
    if region.origin == RegionOrigin.GOLD:
        # Gold regions are not merged: the task scores students against the expert's outline.
        merge_enqueue(region_ids=[region.pk])
        return True
    target = region.project.redundancy_k + region.extra_slots
    if _submitted(region) < target:
        return False
    merge_enqueue(region_ids=[region.pk])
    return True


def merge_enqueue_for_annotator(*, project: Project, annotator: object) -> list[int]:
    """After an exclusion (or an import that changed inputs): re-merge the regions concerned."""
    region_ids = list(
        Submission.objects.filter(
            region__project=project, annotator=annotator, status=SubmissionStatus.SUBMITTED
        )
        .exclude(region__origin=RegionOrigin.GOLD)
        .values_list("region_id", flat=True)
        .distinct()
    )
    due = [
        rid
        for rid in region_ids
        if ConsensusRun.objects.filter(region_id=rid).exists()
        or merge_enqueue_if_due(region_id=rid)
    ]
    merge_enqueue(region_ids=due)
    return due


def merge_enqueue_if_due(*, region_id: int) -> bool:
    region = Region.objects.select_related("project").get(pk=region_id)
    return _submitted(region) >= region.project.redundancy_k + region.extra_slots


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeInputs:
    region: Region
    submissions: list[Submission]
    class_ids: list[int | None]  # compact index -> LabelClass id (0: the background class)
    project_class_ids: list[int | None]  # every class of the project, same convention
    project_index: list[int]  # compact index -> its index in project_class_ids
    downsample: float
    shape: tuple[int, int]
    method: str
    params: dict[str, Any]
    inputs_hash: str


def _project_class_ids(project: Project) -> list[int | None]:
    """Every class of the project in its compact order (0: the background class)."""
    classes = list(LabelClass.objects.filter(project=project).order_by("order", "id"))
    background = next((c.pk for c in classes if c.is_background), None)
    return [background, *[c.pk for c in classes if not c.is_background]]


def _present_class_ids(
    project_class_ids: list[int | None],
    submissions: list[Submission],
    extra_class_ids: Iterable[int] = (),
) -> list[int | None]:
    """The background and the classes that this region's answers use, in the project's order.

    A merge allocates per class present, not per class in the project: a project's many
    classes cost a region that uses two of them nothing (audit finding 6).
    """
    used = set(extra_class_ids)
    for submission in submissions:
        used.update(shape.label_class_id for shape in submission.shapes.all())
        if submission.region_label_id is not None:
            used.add(submission.region_label_id)
    present = [c for c in project_class_ids[1:] if c in used]
    if not present and len(project_class_ids) > 1:
        # Every answer said "nothing": keep one foreground class, so the merge still sees a
        # two-class problem (the methods and the agreement figures are defined from two up).
        present = [project_class_ids[1]]
    return [project_class_ids[0], *present]


def counts_in_project_space(counts: Any, inputs: MergeInputs) -> list[list[float]]:
    """A region's ``[true][said]`` counts over its present classes, placed in the project's
    class order, so evidence from regions that use different classes pools index by index."""
    local = np.asarray(counts, dtype=np.float64)
    size = len(inputs.project_class_ids)
    full = np.zeros((size, size))
    full[np.ix_(inputs.project_index, inputs.project_index)] = local
    return full.tolist()


def _confusion_in_region_space(
    confusion: list | None, inputs: MergeInputs
) -> list[list[float]] | None:
    """A carried project-space confusion matrix cut down to the region's present classes."""
    if not confusion:
        return None
    full = np.asarray(confusion, dtype=np.float64)
    size = len(inputs.project_class_ids)
    if full.shape != (size, size):
        return None  # from before the project's classes changed: start afresh
    cut = full[np.ix_(inputs.project_index, inputs.project_index)]
    rows = cut.sum(axis=1, keepdims=True)
    n = cut.shape[0]
    return np.where(rows > 0, cut / np.where(rows > 0, rows, 1.0), np.eye(n)).tolist()


def _thresholds(project: Project) -> Thresholds:
    return Thresholds(
        contested_share=project.contested_share,
        accept_dice=project.accept_dice,
        max_contested_fraction=project.max_contested_fraction,
        escalate_dice=project.escalate_dice,
        k=project.redundancy_k,
        k_max=project.redundancy_k_max,
    )


def merge_inputs(*, region: Region, extra_class_ids: Iterable[int] = ()) -> MergeInputs:
    """The counted submitted submissions of the region and the hash that names their merge.

    ``extra_class_ids``: classes to index beyond those the submissions use (an expert's
    decision may draw a class no annotator used).
    """
    project = region.project
    slide_mpp = region.slide.mpp
    if not slide_mpp:
        raise MergeError(f"slide {region.slide_id} has no resolution (mpp); set it first")
    downsample = project.target_mpp / slide_mpp
    submissions = list(
        Submission.objects.filter(region=region, status=SubmissionStatus.SUBMITTED, counts=True)
        .prefetch_related("shapes")
        .order_by("pk")
    )
    project_class_ids = _project_class_ids(project)
    class_ids = _present_class_ids(project_class_ids, submissions, extra_class_ids)
    params = {
        "target_mpp": project.target_mpp,
        "slide_mpp": round(slide_mpp, 9),
        "class_ids": class_ids,
        "region_labels": project.region_labels,
        "thresholds": _thresholds(project).__dict__,
    }
    key = {
        "inputs": sorted([s.pk, s.version] for s in submissions),
        "method": project.consensus_method,
        "params": params,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return MergeInputs(
        region=region,
        submissions=submissions,
        class_ids=class_ids,
        project_class_ids=project_class_ids,
        project_index=[project_class_ids.index(c) for c in class_ids],
        downsample=downsample,
        shape=grid_shape(region.width, region.height, downsample),
        method=project.consensus_method,
        params=params,
        inputs_hash=digest,
    )


def rasterize_submission(submission: Submission, inputs: MergeInputs) -> np.ndarray:
    """One annotator's ``(H, W)`` mask: shapes by class; "nothing" all background;
    "cannot_assess" all NOT_RATED."""
    if submission.outcome == Outcome.CANNOT_ASSESS:
        return np.full(inputs.shape, NOT_RATED, dtype=np.int16)
    if submission.outcome == Outcome.NOTHING:
        return np.zeros(inputs.shape, dtype=np.int16)
    index = {cid: i for i, cid in enumerate(inputs.class_ids) if cid is not None}
    shapes = [
        (index[s.label_class_id], s.geometry)
        for s in sorted(submission.shapes.all(), key=lambda s: s.pk)
        if s.label_class_id in index
    ]
    return rasterize_shapes(
        shapes,
        origin=(inputs.region.x, inputs.region.y),
        shape=inputs.shape,
        downsample=inputs.downsample,
    )


# --- reliability ------------------------------------------------------------------------------


def _priors(inputs: MergeInputs, annotator_ids: list[int]) -> list[Prior | None]:
    """Carried reliability per annotator: gold (measured) before STAPLE's running estimate.

    Confusion matrices are carried over the project's classes and cut to the region's.
    """
    project = inputs.region.project
    rows = AnnotatorReliability.objects.filter(project=project, annotator_id__in=annotator_ids)
    best: dict[int, AnnotatorReliability] = {}
    for row in rows:
        if row.n_regions and (row.annotator_id not in best or row.source == ReliabilitySource.GOLD):
            best[row.annotator_id] = row
    priors: list[Prior | None] = []
    for annotator_id in annotator_ids:
        row = best.get(annotator_id)
        priors.append(
            None
            if row is None
            else Prior(
                row.sensitivity,
                row.specificity,
                _confusion_in_region_space(row.confusion, inputs),
            )
        )
    return priors


def _pooled(evidence: dict[str, Any]) -> np.ndarray | None:
    matrices = [np.asarray(m, dtype=np.float64) for m in evidence.values()]
    if not matrices:
        return None
    size = max(m.shape[0] for m in matrices)
    total = np.zeros((size, size))
    for m in matrices:
        total[: m.shape[0], : m.shape[1]] += m
    return total


def reliability_record(
    *, project: Project, annotator_id: int, source: str, key: str, counts: list[list[float]] | None
) -> AnnotatorReliability:
    """Replace one region's evidence (expected pixel counts [true][said]) and re-pool.

    Locked for update: two merges of different regions of one annotator must not lose either's
    evidence. ``counts=None`` removes the region's evidence (e.g. the annotator no longer counts).
    """
    AnnotatorReliability.objects.get_or_create(
        project=project, annotator_id=annotator_id, source=source
    )
    row = AnnotatorReliability.objects.select_for_update().get(
        project=project, annotator_id=annotator_id, source=source
    )
    evidence = dict(row.evidence)
    if counts is None:
        evidence.pop(key, None)
    else:
        evidence[key] = counts
    total = _pooled(evidence)
    row.evidence = evidence
    row.n_regions = len(evidence)
    if total is None:
        row.sensitivity = row.specificity = None
        row.confusion = []
    else:
        rows = total.sum(axis=1, keepdims=True)
        row.confusion = (
            np.where(rows > 0, total / np.where(rows > 0, rows, 1.0), np.eye(total.shape[0]))
            .round(6)
            .tolist()
        )
        fg, bg = total[1:, :].sum(), total[0, :].sum()
        row.sensitivity = float(total[1:, 1:].sum() / fg) if fg > 0 else None
        row.specificity = float(total[0, 0] / bg) if bg > 0 else None
    row.save()
    return row


def _gold_reference(region: Region) -> Submission | None:
    """The expert's (or manager's) first submitted outline on a gold region."""
    return (
        Submission.objects.filter(
            region=region,
            status=SubmissionStatus.SUBMITTED,
            annotator__memberships__project=region.project,
            annotator__memberships__role__in=[Role.EXPERT, Role.MANAGER],
        )
        .order_by("submitted_at", "pk")
        .first()
    )


@transaction.atomic
def reliability_score_gold(*, region: Region) -> int:
    """Score each student's counted submission on a gold region against the expert's outline.

    The pixel counts ``[expert said][student said]`` become the region's evidence in the
    student's ``gold`` reliability (kept apart from STAPLE's estimate); safe to repeat.
    Returns how many students were scored.
    """
    reference = _gold_reference(region)
    if reference is None:
        return 0
    inputs = merge_inputs(region=region)
    truth = rasterize_submission(reference, inputs)
    n_classes = len(inputs.class_ids)
    scored = 0
    for submission in inputs.submissions:
        if submission.pk == reference.pk:
            continue
        said = rasterize_submission(submission, inputs)
        ok = (truth >= 0) & (said >= 0)
        if not ok.any():
            continue
        counts = np.bincount(
            truth[ok].astype(np.int64) * n_classes + said[ok], minlength=n_classes * n_classes
        ).reshape(n_classes, n_classes)
        reliability_record(
            project=region.project,
            annotator_id=submission.annotator_id,
            source=ReliabilitySource.GOLD,
            key=str(region.pk),
            counts=counts_in_project_space(counts, inputs),
        )
        scored += 1
    return scored


# --- the merge --------------------------------------------------------------------------------


def _media_dir(region_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "consensus" / str(region_id)


def _arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _write_arrays(
    region_id: int, inputs_hash: str, arrays: dict[str, np.ndarray]
) -> tuple[str, str, bool]:
    """Write the npz atomically; returns (path under MEDIA_ROOT, digest, whether we created it).

    The name carries the arrays' digest, so two merges that computed the same arrays share a
    file and two that did not (e.g. different carried reliabilities) never overwrite each other.
    """
    digest = _arrays_digest(arrays)
    folder = _media_dir(region_id)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{inputs_hash}-{digest[:16]}.npz"
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    _remove_stale_temps(folder)
    temp = folder / f".tmp-{uuid.uuid4().hex}"
    with open(temp, "wb") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    created = True
    try:
        os.link(temp, final)  # atomic, and never replaces a file that is already published
    except FileExistsError:
        created = False
    finally:
        temp.unlink(missing_ok=True)
    return str(final.relative_to(settings.MEDIA_ROOT)), digest, created


def _remove_stale_temps(folder: Path) -> None:
    """Temp files of killed merges: a live writer never keeps one past its task time limit."""
    cutoff = time.time() - 2 * settings.CELERY_TASK_TIME_LIMIT
    for stale in folder.glob(".tmp-*"):
        try:
            if stale.stat().st_mtime < cutoff:
                stale.unlink(missing_ok=True)
        except OSError:
            continue


def load_arrays(run: ConsensusRun) -> dict[str, np.ndarray]:
    """The run's arrays: ``labels`` (H, W), ``posterior`` and ``vote_share`` (C, H, W),
    ``contested`` (H, W) bool."""
    with np.load(Path(settings.MEDIA_ROOT) / run.arrays_path) as data:
        return {name: data[name] for name in data.files}


def _claim(region: Region, inputs_hash: str) -> ConsensusJob | None:
    job, _ = ConsensusJob.objects.get_or_create(region=region, inputs_hash=inputs_hash)
    max_attempts = settings.CELERY_TASK_MAX_ATTEMPTS
    claimed = attempt_claim(
        ConsensusJob.objects.filter(pk=job.pk), field="attempts", started_at=timezone.now()
    )
    if not claimed:
        ConsensusJob.objects.filter(pk=job.pk, finished_at__isnull=True).update(
            failed_reason=f"merge stopped after {max_attempts} attempts: its worker died each time"
        )
        logger.error("merge of region %s gave up after %s attempts", region.pk, max_attempts)
        return None
    return job


def _region_label(inputs: MergeInputs, priors: list[Prior | None]) -> tuple[int | None, Any]:
    """Dawid-Skene over the annotators' whole-region labels (one item)."""
    from annotation.consensus import run_consensus

    index = {cid: i for i, cid in enumerate(inputs.class_ids) if cid is not None}
    votes = np.array(
        [
            [index.get(s.region_label_id, NOT_RATED) if s.region_label_id else NOT_RATED]
            for s in inputs.submissions
        ],
        dtype=np.int16,
    )
    if votes.size == 0 or (votes < 0).all():
        return None, None
    n_classes = len(inputs.class_ids)
    confusion = []
    for prior in priors:
        given = None if prior is None or prior.confusion is None else np.asarray(prior.confusion)
        confusion.append(
            given if given is not None and given.shape == (n_classes, n_classes) else None
        )
    options: dict[str, Any] = {"n_classes": n_classes}
    if any(c is not None for c in confusion):
        eye = np.full((n_classes, n_classes), 0.1 / max(1, n_classes - 1))
        np.fill_diagonal(eye, 0.9)
        options["confusion"] = np.stack(
            [np.clip(c, 1e-3, None) if c is not None else eye for c in confusion]
        )
    result = run_consensus("dawid_skene", votes, **options)
    label = int(result.labels[0])
    posterior = {
        str(inputs.class_ids[c]): round(float(result.posterior[c, 0]), 6) for c in range(n_classes)
    }
    return (inputs.class_ids[label] if label >= 0 else None), posterior


def merge_region(*, region_id: int) -> ConsensusRun | None:
    """Merge the region's counted submissions; returns the stored run (new or existing).

    Returns None when the region is gone, has no counted submissions, or the attempt cap was
    reached.
    """
    region = Region.objects.select_related("project", "slide").filter(pk=region_id).first()
    if region is None:
        return None
    if region.origin == RegionOrigin.GOLD:
        reliability_score_gold(region=region)
        return None
    inputs = merge_inputs(region=region)
    existing = ConsensusRun.objects.filter(region=region, inputs_hash=inputs.inputs_hash).first()
    if existing is not None:
        return existing
    if not inputs.submissions:
        logger.info("region %s has no counted submissions to merge", region.pk)
        return None
    job = _claim(region, inputs.inputs_hash)
    if job is None:
        return None

    project = region.project
    annotator_ids = [s.annotator_id for s in inputs.submissions]
    priors = _priors(inputs, annotator_ids)
    masks = np.stack([rasterize_submission(s, inputs) for s in inputs.submissions])
    merged = merge_masks(
        masks,
        method=inputs.method,
        n_classes=len(inputs.class_ids),
        priors=priors,
        contested_share=project.contested_share,
    )
    n_worked = _submitted(region)
    status = escalation_status(
        dice=merged.dice,
        contested_fraction=merged.contested_fraction,
        n_rated=merged.n_rated,
        n_worked=n_worked,
        thresholds=_thresholds(project),
    )
    region_label, label_posterior = (
        _region_label(inputs, priors) if project.region_labels else (None, None)
    )
    arrays = {
        "labels": merged.labels,
        "posterior": merged.posterior,
        "vote_share": merged.vote_share,
        "contested": merged.contested,
    }
    path, digest, created_file = _write_arrays(region.pk, inputs.inputs_hash, arrays)
    run = _publish(inputs, merged, status, n_worked, path, digest, region_label, label_posterior)
    if run.arrays_path != path and created_file:
        (Path(settings.MEDIA_ROOT) / path).unlink(missing_ok=True)  # we lost the race
    ConsensusJob.objects.filter(pk=job.pk).update(finished_at=timezone.now())
    return run


def _rater_scores(inputs: MergeInputs, merged: RegionMerge) -> list[dict[str, Any]]:
    scores = []
    for submission, rater in zip(inputs.submissions, merged.raters, strict=True):
        scores.append(
            {
                "annotator": submission.annotator_id,
                "submission": submission.pk,
                "outcome": submission.outcome,
                **{k: v for k, v in rater.items() if k != "counts"},
            }
        )
    return scores


def _publish(
    inputs: MergeInputs,
    merged: RegionMerge,
    status: str,
    n_worked: int,
    path: str,
    digest: str,
    region_label: int | None,
    label_posterior: Any,
) -> ConsensusRun:
    """Insert the run (or find the racing winner's) and, if ours, update what follows from it."""
    region = inputs.region
    polygons = [
        {"label_class": inputs.class_ids[c], "geometry": geometry}
        for c, geometry in mask_to_geojson(
            merged.labels,
            origin=(region.x, region.y),
            downsample=inputs.downsample,
            classes=range(1, len(inputs.class_ids)),
        )
    ]
    fields = {
        "inputs": [[s.pk, s.version, s.annotator_id, s.outcome] for s in inputs.submissions],
        "method": merged.method,
        "params": inputs.params,
        "class_ids": inputs.class_ids,
        "height": inputs.shape[0],
        "width": inputs.shape[1],
        "downsample": inputs.downsample,
        "arrays_path": path,
        "arrays_digest": digest,
        "polygons": polygons,
        "class_dice": {str(c): round(float(v), 6) for c, v in enumerate(merged.class_dice)},
        "dice": merged.dice,
        "fleiss_kappa": merged.fleiss_kappa,
        "rater_scores": _rater_scores(inputs, merged),
        "contested_fraction": merged.contested_fraction,
        "contested_pixels": int(merged.contested.sum()),
        "status": status,
        "region_label_id": region_label,
        "region_label_posterior": label_posterior,
        "iterations": merged.iterations,
        "converged": merged.converged,
    }
    try:
        with transaction.atomic():
            run = ConsensusRun.objects.create(
                region=region, inputs_hash=inputs.inputs_hash, **fields
            )
            _after_publish(inputs, merged, run, n_worked)
    except IntegrityError:
        # Another worker published these inputs first: theirs is the answer.
        return ConsensusRun.objects.get(region=region, inputs_hash=inputs.inputs_hash)
    logger.info(
        "region %s merged: %s (dice %.3f, contested %.3f)",
        region.pk,
        status,
        merged.dice,
        merged.contested_fraction,
    )
    return run


def _after_publish(
    inputs: MergeInputs, merged: RegionMerge, run: ConsensusRun, n_worked: int
) -> None:
    region, project = inputs.region, inputs.region.project
    key = str(region.pk)
    for submission, rater in zip(inputs.submissions, merged.raters, strict=True):
        if rater["rated"]:
            reliability_record(
                project=project,
                annotator_id=submission.annotator_id,
                source=ReliabilitySource.STAPLE,
                key=key,
                counts=counts_in_project_space(rater["counts"], inputs),
            )
    # Annotators who no longer count on this region leave its evidence behind.
    current = {s.annotator_id for s in inputs.submissions}
    stale = (
        AnnotatorReliability.objects.filter(
            project=project, source=ReliabilitySource.STAPLE, evidence__has_key=key
        )
        .exclude(annotator_id__in=current)
        .values_list("annotator_id", flat=True)
    )
    for annotator_id in list(stale):
        reliability_record(
            project=project,
            annotator_id=annotator_id,
            source=ReliabilitySource.STAPLE,
            key=key,
            counts=None,
        )
    # An expert's decision stands: a re-merge of changed inputs only flags it for review
    # (and asks for no more annotators); ``accepted_regions`` keeps answering with the decision.
    from annotation.services.adjudication import adjudication_flag_remerge
    from annotation.services.routing import announce_region_answered

    if run.status == ConsensusStatus.ACCEPTED:
        announce_region_answered(project_id=project.pk)
    if adjudication_flag_remerge(region=region, run=run):
        return
    if run.status == NEEDS_MORE:
        # One more annotator than worked on it so far, within k_max (idempotent: a re-merge of
        # the same state asks for the same number).
        wanted = min(project.redundancy_k_max, n_worked + 1) - project.redundancy_k
        Region.objects.filter(pk=region.pk, extra_slots__lt=wanted).update(extra_slots=wanted)


__all__ = [
    "ConsensusStatus",
    "MergeError",
    "load_arrays",
    "merge_enqueue",
    "merge_enqueue_for_annotator",
    "merge_enqueue_if_complete",
    "merge_inputs",
    "merge_region",
    "reliability_record",
    "counts_in_project_space",
]
