"""Expert adjudication: decide a region, and re-score its annotators against the decision.

An expert's decision supersedes the machine consensus: ``accepted_regions`` answers with it,
and a later re-merge of the region (new or excluded submissions) stores its run but leaves the
decision standing; it sets ``Adjudication.stale_run`` so the region comes back to the expert
(see ``annotation.services.merge``).

Re-scoring (kept simple): each counted annotator's mask is compared with the expert's mask
pixel by pixel; the counts ``[expert said][annotator said]`` become that region's evidence in
the annotator's ``gold`` reliability (key ``"adjudication:<region id>"``, so a second decision
on the region replaces the first's evidence), exactly as on gold-standard regions. STAPLE's
estimate from the merge is left alone. Each annotator's foreground Dice against the decision is
also kept on the decision (``rater_scores``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction

from annotation.geometry import GeometryError, clean_geometry
from annotation.models import (
    Adjudication,
    AdjudicationDecision,
    ConsensusRun,
    LabelClass,
    Region,
    ReliabilitySource,
)
from annotation.rasterize import rasterize_shapes
from annotation.services.merge import (
    MergeError,
    MergeInputs,
    counts_in_project_space,
    merge_inputs,
    rasterize_submission,
    reliability_record,
)
from annotation.services.routing import announce_region_answered

logger = logging.getLogger(__name__)

MAX_REASON = 2000


class AdjudicationError(ValueError):
    """A decision that breaks a rule (no reason, no consensus to accept, bad shape)."""


def adjudication_current(*, region: Region) -> Adjudication | None:
    """The region's current decision: its newest one."""
    return region.adjudications.order_by("-created_at", "-id").first()


def _latest_run(region: Region) -> ConsensusRun | None:
    return ConsensusRun.objects.filter(region=region).order_by("-created_at", "-id").first()


def _clean_shapes(region: Region, shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    classes = {c.pk: c for c in LabelClass.objects.filter(project=region.project)}
    cleaned = []
    for index, item in enumerate(shapes):
        if not isinstance(item, dict):
            raise AdjudicationError(f"shape {index}: expected {{label_class, geometry}}")
        label = classes.get(item.get("label_class"))
        if label is None:
            raise AdjudicationError(
                f"shape {index}: class {item.get('label_class')!r} is not in this project"
            )
        if label.is_background:
            raise AdjudicationError(f"shape {index}: the background class is not drawn")
        geometry = item.get("geometry")
        if not isinstance(geometry, dict):
            raise AdjudicationError(f"shape {index}: geometry must be a GeoJSON object")
        try:
            clean = clean_geometry(
                geometry, region.bounds, max_vertices=settings.ANNOTATION_MAX_VERTICES
            )
        except GeometryError as exc:
            raise AdjudicationError(f"shape {index}: {exc}") from None
        cleaned.append({"label_class": label.pk, "geometry": clean.geometry})
    return cleaned


def adjudication_mask(shapes: list[dict[str, Any]], inputs: MergeInputs) -> np.ndarray:
    """The decision as an ``(H, W)`` int16 mask on the region's merge grid (compact classes)."""
    index = {cid: i for i, cid in enumerate(inputs.class_ids) if cid is not None}
    region = inputs.region
    return rasterize_shapes(
        [(index[s["label_class"]], s["geometry"]) for s in shapes if s["label_class"] in index],
        origin=(region.x, region.y),
        shape=inputs.shape,
        downsample=inputs.downsample,
    )


def _foreground_dice(counts: np.ndarray) -> float:
    """Dice of same-class foreground pixels; 1.0 when neither marked anything."""
    hits = float(np.trace(counts[1:, 1:]))
    marked = float(counts[1:, :].sum() + counts[:, 1:].sum())
    return 1.0 if marked == 0 else round(2.0 * hits / marked, 6)


def _rescore(region: Region, shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record each counted annotator's evidence against the decision; their Dice scores."""
    try:
        inputs = merge_inputs(region=region, extra_class_ids=[s["label_class"] for s in shapes])
    except MergeError as exc:
        logger.warning("region %s not re-scored: %s", region.pk, exc)
        return []
    truth = adjudication_mask(shapes, inputs).astype(np.int64)
    n_classes = len(inputs.class_ids)
    key = f"adjudication:{region.pk}"
    scores = []
    for submission in inputs.submissions:
        said = rasterize_submission(submission, inputs)
        rated = said >= 0
        if not rated.any():  # "cannot assess": no evidence either way
            continue
        counts = np.bincount(
            truth[rated] * n_classes + said[rated], minlength=n_classes * n_classes
        ).reshape(n_classes, n_classes)
        reliability_record(
            project=region.project,
            annotator_id=submission.annotator_id,
            source=ReliabilitySource.GOLD,
            key=key,
            counts=counts_in_project_space(counts, inputs),
        )
        scores.append(
            {
                "annotator": submission.annotator_id,
                "submission": submission.pk,
                "dice": _foreground_dice(counts),
            }
        )
    return scores


@transaction.atomic
def adjudication_decide(
    *,
    region: Region,
    expert: object,
    decision: str,
    shapes: list[dict[str, Any]] | None = None,
    reason: str,
) -> Adjudication:
    """Store an expert's decision on the region and re-score its annotators against it.

    ``accept`` takes the current consensus polygons as they are (``shapes`` is ignored);
    ``edit`` and ``redraw`` take ``shapes`` (``[{label_class, geometry}]``, level-0 GeoJSON),
    validated and clipped to the region; an empty redraw says the region holds nothing.
    """
    reason = (reason or "").strip()
    if not reason:
        raise AdjudicationError("say why: a decision needs a reason")
    if len(reason) > MAX_REASON:
        raise AdjudicationError(f"the reason is longer than {MAX_REASON} characters")
    if decision not in AdjudicationDecision.values:
        raise AdjudicationError(f"decision must be one of {', '.join(AdjudicationDecision.values)}")
    # One decision at a time per region: the newest row is the answer, so order them.
    region = Region.objects.select_for_update().select_related("project", "slide").get(pk=region.pk)
    run = _latest_run(region)
    if decision in (AdjudicationDecision.ACCEPT, AdjudicationDecision.EDIT) and run is None:
        raise AdjudicationError(f"region {region.pk} has no consensus to {decision}; redraw it")
    if decision == AdjudicationDecision.ACCEPT:
        cleaned = [dict(p) for p in run.polygons]
    else:
        cleaned = _clean_shapes(region, list(shapes or []))
    adjudication = Adjudication.objects.create(
        region=region,
        expert=expert,
        decision=decision,
        reason=reason,
        shapes=cleaned,
        based_on=run,
        inputs_hash=run.inputs_hash if run else "",
        rater_scores=_rescore(region, cleaned),
    )
    # The decision answers a routing request too: the region leaves the queue.
    Region.objects.filter(pk=region.pk, expert_requested=True).update(expert_requested=False)
    announce_region_answered(project_id=region.project_id)
    logger.info("region %s adjudicated (%s) by user %s", region.pk, decision, expert.pk)
    return adjudication


def adjudication_flag_remerge(*, region: Region, run: ConsensusRun) -> bool:
    """After a merge published ``run``: flag the current decision if the inputs changed.

    Returns True when the region has a decision (which stands, whatever the merge found).
    """
    current = adjudication_current(region=region)
    if current is None:
        return False
    if run.inputs_hash != current.inputs_hash:
        Adjudication.objects.filter(pk=current.pk, stale_run__isnull=True).update(stale_run=run)
        logger.info("region %s re-merged after adjudication: flagged for review", region.pk)
    return True


__all__ = [
    "AdjudicationError",
    "adjudication_current",
    "adjudication_decide",
    "adjudication_flag_remerge",
    "adjudication_mask",
]
