"""Reads on consensus: accepted answers, the adjudication queue, reliability (filtered)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404

from annotation.models import (
    Adjudication,
    AnnotatorReliability,
    ConsensusRun,
    ConsensusStatus,
    Project,
    Region,
    Role,
)
from annotation.selectors import access_project, role_in

# Who may read machine consensus: never annotators (blind annotation), whatever they submitted.
CONSENSUS_READERS = (Role.MANAGER, Role.EXPERT, Role.RESEARCHER)
ADJUDICATORS = (Role.MANAGER, Role.EXPERT)
RELIABILITY_READERS_ALL = (Role.MANAGER, Role.EXPERT)


def latest_runs(project: Project) -> QuerySet[ConsensusRun]:
    """Each region's current run: the newest one (a re-merge supersedes the earlier ones)."""
    newest = (
        ConsensusRun.objects.filter(region=OuterRef("region"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    return ConsensusRun.objects.filter(region__project=project, id=Subquery(newest))


def current_adjudications(project: Project) -> dict[int, Adjudication]:
    """Each adjudicated region's current (newest) decision, by region id."""
    newest = (
        Adjudication.objects.filter(region=OuterRef("region"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    rows = Adjudication.objects.filter(region__project=project, id=Subquery(newest))
    return {a.region_id: a for a in rows}


@dataclass(frozen=True)
class AcceptedRegion:
    """An accepted region's answer, arrays loaded on first use: the expert's decision where
    there is one (``adjudication``; ``run`` is then the newest run, or None), else the run."""

    region: Region
    run: ConsensusRun | None
    adjudication: Adjudication | None = None

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        from annotation.services.merge import load_arrays, merge_inputs

        if self.adjudication is None:
            return load_arrays(self.run)
        from annotation.services.adjudication import adjudication_mask

        shapes = self.adjudication.shapes
        inputs = merge_inputs(
            region=self.region, extra_class_ids=[s["label_class"] for s in shapes]
        )
        labels = adjudication_mask(self.adjudication.shapes, inputs)
        return {
            "labels": labels,
            "contested": np.zeros(labels.shape, dtype=bool),
            "class_ids": np.asarray(inputs.class_ids, dtype=object),
        }

    @property
    def labels(self) -> np.ndarray:
        """``(H, W)`` int16 compact class indices at the project's target_mpp."""
        return self._arrays["labels"]

    @property
    def contested(self) -> np.ndarray:
        """``(H, W)`` bool: pixels whose majority share fell below the project's contested_share."""
        return self._arrays["contested"]

    @property
    def class_ids(self) -> list[int | None]:
        """LabelClass id of each compact index in ``labels``."""
        if self.adjudication is not None:
            return list(self._arrays["class_ids"])
        return list(self.run.class_ids)


def accepted_regions(project: Project) -> list[AcceptedRegion]:
    """Regions with an answer, oldest region first: an expert's decision supersedes the
    machine's, whatever the region's runs say; otherwise the current run if it is accepted."""
    decided = current_adjudications(project)
    runs = {
        run.region_id: run
        for run in latest_runs(project).select_related("region", "region__slide")
        if run.status == ConsensusStatus.ACCEPTED or run.region_id in decided
    }
    regions = {run.region_id: run.region for run in runs.values()}
    missing = set(decided) - set(regions)
    regions.update({r.pk: r for r in Region.objects.filter(pk__in=missing).select_related("slide")})
    return [
        AcceptedRegion(region=regions[rid], run=runs.get(rid), adjudication=decided.get(rid))
        for rid in sorted(regions)
    ]


def adjudication_queue(project: Project) -> list[ConsensusRun]:
    """Regions waiting for an expert, most disagreement first: (1 - dice) x contested pixels.

    A decided region leaves the queue, and comes back when a re-merge of changed inputs
    flagged its decision for review, or when the learning app routed it to an expert.
    """
    decided = current_adjudications(project)
    runs = [
        run
        for run in latest_runs(project).select_related("region")
        if (run.region_id in decided and decided[run.region_id].needs_review)
        or (run.region_id not in decided and run.status == ConsensusStatus.NEEDS_ADJUDICATION)
        # Routed by the learning app: contested and the model uncertain (decided or not).
        or run.region.expert_requested
    ]
    return sorted(runs, key=lambda r: (-(1.0 - r.dice) * r.contested_pixels, r.region_id))


def access_region_consensus(user: object, region_id: int) -> Region:
    """The region if the user may read its consensus (manager, expert, researcher), else 404."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such region.")
    region = (
        Region.objects.filter(
            pk=region_id,
            project__memberships__user=user,
            project__memberships__role__in=CONSENSUS_READERS,
        )
        .select_related("project")
        .first()
    )
    if region is None:
        raise Http404("No such region.")
    return region


def reliability_visible_to(user: object, project_id: int) -> QuerySet[AnnotatorReliability]:
    """Managers and experts see every annotator's reliability; anyone else only their own."""
    project = access_project(user, project_id)
    rows = AnnotatorReliability.objects.filter(project=project).select_related("annotator")
    if role_in(user, project) in RELIABILITY_READERS_ALL:
        return rows
    return rows.filter(annotator=user)


def final_answer_shapes(region: Region) -> list[dict[str, Any]] | None:
    """The region's final outlines ``[{label_class, geometry}]`` (level-0 GeoJSON): the current
    expert decision, else the newest run when it was accepted; None while the region is open."""
    decision = Adjudication.objects.filter(region=region).order_by("-created_at", "-id").first()
    if decision is not None:
        return list(decision.shapes)
    run = ConsensusRun.objects.filter(region=region).order_by("-created_at", "-id").first()
    if run is not None and run.status == ConsensusStatus.ACCEPTED:
        return list(run.polygons)
    return None
