"""The provenance rows of an export's manifest: slides, regions, annotators, model versions.

Everything here is deterministic for the same database rows (no build time, no export id),
and names people only by pseudonym.
"""

from __future__ import annotations

from typing import Any

from annotation.models import AnnotatorReliability, LabelClass, Project
from annotation.selectors_consensus import AcceptedRegion
from learning.exports.gather import Namer
from learning.models import ModelVersion
from slides.models import Slide


def slide_row(slide: Slide, namer: Namer, split: str) -> dict[str, Any]:
    """Checksum and scan metadata; the file name only when the project does not pseudonymise."""
    row = {
        "id": namer.slide(slide),
        "case": namer.case(slide),
        "split": split,
        "checksum_sha256": slide.checksum,
        "vendor": slide.vendor,
        "width": slide.width,
        "height": slide.height,
        "mpp": slide.mpp,
        "level_count": slide.level_count,
        "level_downsamples": slide.level_downsamples,
        "objective_power": slide.objective_power,
        "file_size": slide.file_size,
    }
    if not namer.pseudonymize_slides:
        row["file_name"] = slide.name
    return row


def _scores(rows: list[dict[str, Any]], namer: Namer) -> list[dict[str, Any]]:
    found = []
    for row in rows or []:
        row = dict(row)
        if "annotator" in row:
            row["annotator"] = namer.annotator(row["annotator"])
        found.append(row)
    return found


def region_row(
    accepted: AcceptedRegion, namer: Namer, split: str, raw_names: list[str]
) -> dict[str, Any]:
    """A region's geometry, where its answer came from, and how much the annotators agreed."""
    region, run, decision = accepted.region, accepted.run, accepted.adjudication
    key = f"region-{region.pk}"
    slide = namer.slide(region.slide)
    row: dict[str, Any] = {
        "id": key,
        "slide": slide,
        "split": split,
        "level0": {"x": region.x, "y": region.y, "width": region.width, "height": region.height},
        "answer": "adjudication" if decision is not None else "consensus",
        "soft_labels": f"soft_labels/{slide}/{key}.npz",
        "raw_masks": [
            {"annotator": name, "file": f"raw_masks/{slide}/{key}/{name}.png"} for name in raw_names
        ],
    }
    if run is not None:
        row["consensus"] = {
            "run": run.pk,
            "inputs_hash": run.inputs_hash,
            "method": run.method,
            "params": run.params,
            "inputs": [
                {
                    "submission": sub,
                    "version": version,
                    "annotator": namer.annotator(annotator),
                    "outcome": outcome,
                }
                for sub, version, annotator, outcome in run.inputs
            ],
            "status": run.status,
            "dice": run.dice,
            "class_dice": run.class_dice,
            "fleiss_kappa": run.fleiss_kappa,
            "contested_fraction": run.contested_fraction,
            "rater_scores": _scores(run.rater_scores, namer),
            "iterations": run.iterations,
            "converged": run.converged,
        }
    if decision is not None:
        row["adjudication"] = {
            "id": decision.pk,
            "decision": decision.decision,
            "reason": decision.reason,
            "expert": namer.annotator(decision.expert_id),
            "based_on_run": decision.based_on_id,
            "rater_scores": _scores(decision.rater_scores, namer),
            "decided_at": decision.created_at.isoformat(),
        }
    return row


def annotator_rows(project: Project, user_ids: set[int], namer: Namer) -> list[dict[str, Any]]:
    """Each annotator's pseudonym and reliability estimates (STAPLE's and the gold ones)."""
    rows = AnnotatorReliability.objects.filter(project=project, annotator_id__in=user_ids)
    by_user: dict[int, dict[str, Any]] = {uid: {} for uid in user_ids}
    for row in rows:
        by_user[row.annotator_id][row.source] = {
            "sensitivity": row.sensitivity,
            "specificity": row.specificity,
            "confusion": row.confusion,
            "n_regions": row.n_regions,
        }
    found = [
        {"id": namer.annotator(uid), "reliability": reliability}
        for uid, reliability in by_user.items()
    ]
    return sorted(found, key=lambda r: r["id"])


def model_version_rows(
    project: Project, run_ids: set[int], adjudication_ids: set[int]
) -> list[dict[str, Any]]:
    """The project's model versions trained on any of the exported answers."""
    found = []
    for version in ModelVersion.objects.filter(project=project).order_by("number"):
        runs = run_ids & set(version.consensus_runs or [])
        decisions = adjudication_ids & set(version.adjudications or [])
        if not runs and not decisions:
            continue
        found.append(
            {
                "id": version.pk,
                "number": version.number,
                "dataset_hash": version.dataset_hash,
                "metrics": version.metrics,
                "target_mpp": version.target_mpp,
                "patch_size": version.patch_size,
                "shared_consensus_runs": sorted(runs),
                "shared_adjudications": sorted(decisions),
                "created_at": version.created_at.isoformat(),
            }
        )
    return found


def class_rows(project: Project, class_ids: list[int]) -> list[dict[str, Any]]:
    """Export class 0 (background: everything not chosen) and the chosen classes 1..K."""
    classes = {c.pk: c for c in LabelClass.objects.filter(project=project)}
    rows = [{"index": 0, "name": "background", "label_class": None, "color": "#ffffff"}]
    for index, cid in enumerate(class_ids, start=1):
        c = classes[cid]
        rows.append({"index": index, "name": c.name, "label_class": cid, "color": c.color})
    return rows
