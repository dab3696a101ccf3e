"""Scoring a round against the ground truth (evaluation: reads the database, changes nothing).

The inputs are exactly what the merge saw: ``merge_inputs`` and ``rasterize_submission`` on the
stored submissions. The alternatives to the project's method run through the pure
``annotation.consensus`` registry on those same masks; the ground truth is rasterised on the
same grid at ``target_mpp``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annotation.consensus import run_consensus
from annotation.models import LabelClass, Project, Region, RegionOrigin
from annotation.rasterize import rasterize_shapes
from annotation.selectors_consensus import accepted_regions, current_adjudications
from annotation.services.merge import load_arrays, merge_inputs, rasterize_submission
from learning.simulation.metrics import confusion_counts, dice_from_counts
from learning.simulation.truth import GroundTruth

logger = logging.getLogger(__name__)

METHODS = ("majority_vote", "staple", "weighted_vote", "final")
METHOD_TITLES = {
    "majority_vote": "majority vote",
    "staple": "STAPLE (multi-class)",
    "weighted_vote": "reliability-weighted vote",
    "final": "platform's answer (configured method + experts)",
}


@dataclass
class Tally:
    """Pooled ``[true][said]`` pixel counts per method and per student."""

    n_classes: int
    methods: dict[str, np.ndarray] = field(default_factory=dict)
    students: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, table: dict[str, np.ndarray], key: str, counts: np.ndarray) -> None:
        if key not in table:
            table[key] = np.zeros((self.n_classes, self.n_classes), dtype=np.int64)
        table[key] += counts


def _weights(usernames: list[str], reliability: dict[str, float]) -> list[float]:
    """Per rater: the platform's estimate, 1.0 for a rater it has no estimate for yet."""
    return [reliability.get(u, 1.0) for u in usernames]


def _final_mask(region: Region, inputs: Any, decided: dict[int, Any]) -> np.ndarray | None:
    index = {cid: i for i, cid in enumerate(inputs.class_ids) if cid is not None}
    adjudication = decided.get(region.pk)
    if adjudication is not None:
        shapes = [
            (index[s["label_class"]], s["geometry"])
            for s in adjudication.shapes
            if s.get("label_class") in index
        ]
        return rasterize_shapes(
            shapes, origin=(region.x, region.y), shape=inputs.shape, downsample=inputs.downsample
        )
    run = region.consensus_runs.order_by("-created_at", "-id").first()
    if run is None:
        return None
    # The run indexes the classes its answers used: map them to this evaluation's indices.
    labels = load_arrays(run)["labels"].astype(np.int16)
    table = np.array([index.get(cid, 0) for cid in run.class_ids], dtype=np.int16)
    mapped = table[np.clip(labels, 0, len(table) - 1)]
    undecided = np.int16(len(inputs.class_ids))  # STAPLE's "undecided" stays past the classes
    return np.where(labels < 0, labels, np.where(labels >= len(table), undecided, mapped))


def evaluate_round(
    *,
    project: Project,
    round_number: int,
    truth: dict[int, GroundTruth],
    reliability: dict[str, float],
    tally_all: Tally | None = None,
) -> dict[str, Any]:
    """Dice of each consensus method and each student over the round's regions, pooled."""
    regions = list(
        Region.objects.filter(project=project, round_number=round_number)
        .exclude(origin=RegionOrigin.GOLD)
        .select_related("project", "slide")
        .order_by("pk")
    )
    decided = current_adjudications(project)
    tally: Tally | None = None
    # The ground truth is indexed by the project's classes: score every region in that space
    # (a merge itself indexes only the classes its answers use).
    every_class = list(LabelClass.objects.filter(project=project).values_list("pk", flat=True))
    for region in regions:
        inputs = merge_inputs(region=region, extra_class_ids=every_class)
        if not inputs.submissions:
            continue
        n_classes = len(inputs.class_ids)
        tally = tally or Tally(n_classes)
        masks = np.stack([rasterize_submission(s, inputs) for s in inputs.submissions])
        names = [s.annotator.username for s in inputs.submissions]
        gt = truth[region.slide_id].mask((region.x, region.y), inputs.shape, inputs.downsample)
        answers = {
            "majority_vote": run_consensus("majority_vote", masks, n_classes=n_classes).labels,
            "staple": run_consensus(
                "staple_multiclass", masks, n_classes=n_classes, undecided=0
            ).labels,
            "weighted_vote": run_consensus(
                "weighted_vote",
                masks,
                n_classes=n_classes,
                weights=_weights(names, reliability),
            ).labels,
        }
        final = _final_mask(region, inputs, decided)
        if final is not None:
            answers["final"] = final
        for method, labels in answers.items():
            counts = confusion_counts(gt, labels, n_classes)
            tally.add(tally.methods, method, counts)
            if tally_all is not None:
                tally_all.add(tally_all.methods, method, counts)
        per_rater = []
        for name, mask in zip(names, masks, strict=True):
            counts = confusion_counts(gt, mask, n_classes)
            per_rater.append(counts)
            tally.add(tally.students, name, counts)
            if tally_all is not None:
                tally_all.add(tally_all.students, name, counts)
        # The same region's single annotators: its median one (upper median for an even count,
        # the side that favours the students) and its best one (an oracle pick).
        ranked = sorted(per_rater, key=lambda c: np.nan_to_num(dice_from_counts(c), nan=1.0))
        for key, counts in (
            ("median_student", ranked[len(ranked) // 2]),
            ("best_student", ranked[-1]),
        ):
            tally.add(tally.methods, key, counts)
            if tally_all is not None:
                tally_all.add(tally_all.methods, key, counts)
    if tally is None:
        return {"round": round_number, "regions": len(regions), "dice": {}, "students": {}}
    students = {u: dice_from_counts(c) for u, c in tally.students.items()}
    values = np.array([v for v in students.values() if np.isfinite(v)])
    dice = {m: dice_from_counts(c) for m, c in tally.methods.items()}
    return {
        "round": round_number,
        "regions": len(regions),
        "dice": dice,
        "students": students,
        "median_student": dice.get("median_student", float("nan")),
        "best_student": dice.get("best_student", float("nan")),
        "median_student_overall": float(np.median(values)) if values.size else float("nan"),
        "best_student_overall": float(values.max()) if values.size else float("nan"),
    }


def labelled_area_mm2(project: Project) -> tuple[int, float]:
    """Regions with an accepted answer and their area (level-0 px at the slide's mpp, in mm²)."""
    answered = accepted_regions(project)
    area = sum(
        a.region.width * a.region.height * (a.region.slide.mpp or 0.0) ** 2 / 1e6 for a in answered
    )
    return len(answered), float(area)


def unanswered(project: Project, round_number: int) -> list[int]:
    """Ids of the round's regions without an accepted answer yet."""
    done = {a.region.pk for a in accepted_regions(project)}
    ids = (
        Region.objects.filter(project=project, round_number=round_number)
        .exclude(origin=RegionOrigin.GOLD)
        .values_list("pk", flat=True)
    )
    return [rid for rid in ids if rid not in done]
