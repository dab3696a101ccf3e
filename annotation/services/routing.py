"""What the learning app may ask of annotation: announce accepted answers, route a region back
for more annotators or to an expert, and hand new regions to annotators up front.

``annotation`` never imports ``learning``: it announces events by task name, on commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from celery import current_app
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    Membership,
    Project,
    Region,
    Role,
)

logger = logging.getLogger(__name__)

REGION_ACCEPTED_TASK = "learning.region_accepted"


def announce_region_answered(*, project_id: int) -> None:
    """After commit, tell the learning app a region of the project may have an accepted answer.

    The learning side re-counts from the database, so a lost or repeated message is harmless.
    """
    transaction.on_commit(
        lambda: current_app.send_task(REGION_ACCEPTED_TASK, args=[project_id]), robust=True
    )


def region_request_more_annotators(*, region: Region, reason: str) -> bool:
    """One more annotator slot on the region, within the project's k_max; False at the cap."""
    project = region.project
    cap = project.redundancy_k_max - project.redundancy_k
    updated = Region.objects.filter(pk=region.pk, extra_slots__lt=cap).update(
        extra_slots=min(cap, region.extra_slots + 1)
    )
    logger.info("region %s routed to more annotators (%s): %s", region.pk, reason, bool(updated))
    return bool(updated)


def region_request_expert(*, region: Region, reason: str) -> bool:
    """Put the region in the experts' adjudication queue; False if it was already there."""
    updated = Region.objects.filter(pk=region.pk, expert_requested=False).update(
        expert_requested=True
    )
    logger.info("region %s routed to an expert (%s)", region.pk, reason)
    return bool(updated)


def _eligible_annotators(project: Project) -> list[int]:
    members = Membership.objects.filter(project=project, role=Role.ANNOTATOR, excluded=False)
    if project.qualification_gold_regions:
        members = members.filter(qualified_at__isnull=False)
    return list(members.values_list("user_id", flat=True))


@transaction.atomic
def assignments_prefill(*, project: Project, regions: Iterable[Region]) -> list[Assignment]:
    """Give each new region to k distinct annotators, least loaded first (active work).

    Regions keep the pull model too: a slot that cannot be filled now (too few annotators)
    is taken later through next-region. Safe to run twice: an annotator holds a region once.
    """
    annotators = _eligible_annotators(project)
    load = dict(
        Assignment.objects.filter(
            region__project=project, status=AssignmentStatus.ACTIVE, annotator_id__in=annotators
        )
        .values_list("annotator_id")
        .annotate(n=Count("id"))
    )
    counting = Q(status__in=[AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED])
    created: list[Assignment] = []
    expires = timezone.now() + project.assignment_expiry
    for region in regions:
        holders = set(region.assignments.values_list("annotator_id", flat=True))
        free = (
            project.redundancy_k + region.extra_slots - region.assignments.filter(counting).count()
        )
        ranked = sorted(
            (a for a in annotators if a not in holders), key=lambda a: (load.get(a, 0), a)
        )
        for annotator_id in ranked[: max(0, free)]:
            try:
                with transaction.atomic():
                    created.append(
                        Assignment.objects.create(
                            region=region, annotator_id=annotator_id, expires_at=expires
                        )
                    )
            except IntegrityError:
                continue
            load[annotator_id] = load.get(annotator_id, 0) + 1
    return created
