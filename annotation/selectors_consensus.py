"""Reads on consensus: accepted answers, the adjudication queue, reliability (filtered)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404

from annotation.models import (
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


@dataclass(frozen=True)
class AcceptedRegion:
    """An accepted region's answer: its current run, with the arrays loaded on first use."""

    region: Region
    run: ConsensusRun

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        from annotation.services.merge import load_arrays

        return load_arrays(self.run)

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
        return list(self.run.class_ids)


def accepted_regions(project: Project) -> list[AcceptedRegion]:
    """Regions whose current consensus run is accepted, oldest region first."""
    runs = (
        latest_runs(project)
        .filter(status=ConsensusStatus.ACCEPTED)
        .select_related("region", "region__slide")
        .order_by("region_id")
    )
    return [AcceptedRegion(region=run.region, run=run) for run in runs]


def adjudication_queue(project: Project) -> list[ConsensusRun]:
    """Regions waiting for an expert, most disagreement first: (1 - dice) x contested pixels."""
    runs = list(
        latest_runs(project)
        .filter(status=ConsensusStatus.NEEDS_ADJUDICATION)
        .select_related("region")
    )
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
