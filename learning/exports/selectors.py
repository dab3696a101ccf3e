"""Reads on research exports and the researchers' figures, filtered by role (404 otherwise)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import AnnotatorReliability, Project, Role
from annotation.pseudonyms import project_secret
from annotation.selectors import access_project
from annotation.selectors_consensus import CONSENSUS_READERS, accepted_regions, latest_runs
from learning.exports.gather import Namer
from learning.models import ModelVersion, TrainingExport
from learning.selectors import member_rows

# Who may build, list and download exports: never annotators (they would see peers' work).
EXPORTERS = (Role.MANAGER, Role.RESEARCHER)
# Who may read the researchers' figures (agreement, reliability by pseudonym, model metrics).
RESEARCH_READERS = CONSENSUS_READERS


def access_project_for_exports(user: object, project_id: int) -> Project:
    """The project if the user is a manager or researcher in it, else 404."""
    return access_project(user, project_id, roles=EXPORTERS)


def exports_of(user: object, project_id: int) -> QuerySet[TrainingExport]:
    """The project's exports, newest first, for a manager or researcher (404 otherwise)."""
    project = access_project_for_exports(user, project_id)
    return TrainingExport.objects.filter(project=project).order_by("-created_at", "-id")


def access_export(user: object, export_id: int) -> TrainingExport:
    """One export if the user is a manager or researcher of its project, else 404."""
    export = (
        member_rows(TrainingExport, user, EXPORTERS)
        .filter(pk=export_id)
        .select_related("project")
        .first()
    )
    if export is None:
        raise Http404("No such export.")
    return export


def export_lineage(export: TrainingExport) -> dict[str, Any]:
    """Export -> consensus runs -> annotations (submissions, by pseudonym); export -> adjudications;
    export -> model versions trained on the same answers."""
    from annotation.models import Adjudication, ConsensusRun

    namer = Namer(project_secret(export.project), export.project.pseudonymize_slides)
    runs = ConsensusRun.objects.filter(pk__in=export.consensus_runs).order_by("pk")
    decisions = Adjudication.objects.filter(pk__in=export.adjudications).order_by("pk")
    versions = ModelVersion.objects.filter(pk__in=export.model_versions).order_by("number")
    return {
        "export": export.pk,
        "export_hash": export.export_hash,
        "consensus_runs": [
            {
                "id": run.pk,
                "region": run.region_id,
                "method": run.method,
                "dice": run.dice,
                "annotations": [
                    {
                        "submission": sub,
                        "version": version,
                        "annotator": namer.annotator(annotator),
                        "outcome": outcome,
                    }
                    for sub, version, annotator, outcome in run.inputs
                ],
            }
            for run in runs
        ],
        "adjudications": [
            {
                "id": d.pk,
                "region": d.region_id,
                "decision": d.decision,
                "based_on_run": d.based_on_id,
                "expert": namer.annotator(d.expert_id),
            }
            for d in decisions
        ],
        "model_versions": [
            {"id": v.pk, "number": v.number, "dataset_hash": v.dataset_hash, "metrics": v.metrics}
            for v in versions
        ],
    }


def research_agreement(user: object, project_id: int) -> dict[str, Any]:
    """Agreement per region (current runs, expert decisions) and each annotator's reliability
    under a pseudonym, for managers, experts and researchers (404 otherwise)."""
    project = access_project(user, project_id, roles=RESEARCH_READERS)
    namer = Namer(project_secret(project), project.pseudonymize_slides)
    decided = {a.region.pk for a in accepted_regions(project) if a.adjudication is not None}
    regions = [
        {
            "region": run.region_id,
            "run": run.pk,
            "status": run.status,
            "method": run.method,
            "dice": run.dice,
            "fleiss_kappa": run.fleiss_kappa,
            "contested_fraction": run.contested_fraction,
            "adjudicated": run.region_id in decided,
        }
        for run in latest_runs(project).order_by("region_id")
    ]
    reliability: dict[str, dict[str, Any]] = {}
    for row in AnnotatorReliability.objects.filter(project=project).order_by("annotator_id"):
        reliability.setdefault(namer.annotator(row.annotator_id), {})[row.source] = {
            "sensitivity": row.sensitivity,
            "specificity": row.specificity,
            "n_regions": row.n_regions,
        }
    dice = [r["dice"] for r in regions]
    return {
        "project": project.pk,
        "regions": regions,
        "mean_dice": round(sum(dice) / len(dice), 6) if dice else None,
        "annotators": [{"id": k, "reliability": v} for k, v in sorted(reliability.items())],
    }


def research_model_versions(user: object, project_id: int) -> list[dict[str, Any]]:
    """The project's model versions and their metrics (managers, experts, researchers)."""
    project = access_project(user, project_id, roles=RESEARCH_READERS)
    return [
        {
            "id": v.pk,
            "number": v.number,
            "parent": v.parent_id,
            "metrics": v.metrics,
            "dataset_hash": v.dataset_hash,
            "consensus_runs": v.consensus_runs,
            "adjudications": v.adjudications,
            "train_regions": v.train_regions,
            "val_regions": v.val_regions,
            "class_ids": v.class_ids,
            "target_mpp": v.target_mpp,
            "patch_size": v.patch_size,
            "created_at": v.created_at.isoformat(),
        }
        for v in ModelVersion.objects.filter(project=project).order_by("number")
    ]
