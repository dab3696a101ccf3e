"""Handing out regions: k distinct annotators per region, safe under concurrency."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    CampaignState,
    Membership,
    Project,
    Region,
    RegionOrigin,
    RegionStatus,
    Role,
    Submission,
    SubmissionStatus,
)

logger = logging.getLogger(__name__)

_COUNTING = [AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED]


class AssignmentError(ValueError):
    """The request cannot be served (campaign paused, not an annotator, excluded)."""


def assignments_expire(*, project: Project) -> int:
    """Active assignments past their expiry return their slot to the pool."""
    return Assignment.objects.filter(
        region__project=project, status=AssignmentStatus.ACTIVE, expires_at__lt=timezone.now()
    ).update(status=AssignmentStatus.EXPIRED)


def _needs_gold(project: Project, membership: Membership, done: int) -> bool:
    """Gold regions come first until qualified, then every 1/gold_mix_rate-th assignment."""
    if project.qualification_gold_regions and membership.qualified_at is None:
        return True
    if project.gold_mix_rate <= 0:
        return False
    period = max(1, round(1 / project.gold_mix_rate))
    return done % period == period - 1


def _open_regions(project: Project, user: object, gold: bool):  # noqa: ANN202 - a queryset
    regions = Region.objects.filter(project=project, status=RegionStatus.OPEN).exclude(
        assignments__annotator=user
    )
    if gold:
        # Only gold regions whose expert outline exists: a student's work is scored against it.
        reference = Submission.objects.filter(
            region=OuterRef("pk"),
            status=SubmissionStatus.SUBMITTED,
            annotator__memberships__project=OuterRef("project"),
            annotator__memberships__role__in=[Role.EXPERT, Role.MANAGER],
        )
        return regions.filter(origin=RegionOrigin.GOLD).filter(Exists(reference)).order_by("pk")
    # The slot count is a correlated subquery, not a join with GROUP BY: PostgreSQL refuses
    # FOR UPDATE on a grouped query, and _take_slot locks straight from this queryset.
    taken = (
        Assignment.objects.filter(region=OuterRef("pk"), status__in=_COUNTING)
        .order_by()
        .values("region")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        regions.exclude(origin=RegionOrigin.GOLD)
        .annotate(taken=Coalesce(Subquery(taken, output_field=IntegerField()), Value(0)))
        # k per region, plus the slots a disagreeing merge asked for (Region.extra_slots).
        .filter(taken__lt=project.redundancy_k + F("extra_slots"))
        # Fill regions nearest to complete first, oldest round first: consensus starts sooner.
        .order_by("-taken", "round_number", "pk")
    )


def assignment_next(*, project: Project, user: object) -> Assignment | None:
    """The annotator's current assignment, or a new one; None when nothing is left.

    Two annotators asking at once never take the same slot: one candidate region row is locked
    (``SELECT ... FOR NO KEY UPDATE SKIP LOCKED``), its slot count re-read under the lock, and the
    ``(region, annotator)`` unique constraint stops a second slot for the same person.
    """
    membership = Membership.objects.filter(project=project, user=user).first()
    if membership is None or membership.role != Role.ANNOTATOR:
        raise AssignmentError("only the project's annotators receive regions")
    if membership.excluded:
        raise AssignmentError("you are excluded from this project")
    if project.state != CampaignState.OPEN:
        raise AssignmentError(f"the campaign is {project.state}")
    assignments_expire(project=project)
    current = (
        Assignment.objects.filter(
            region__project=project, annotator=user, status=AssignmentStatus.ACTIVE
        )
        .select_related("region")
        .first()
    )
    if current is not None:
        return current
    done = Assignment.objects.filter(region__project=project, annotator=user).count()
    wants_gold = _needs_gold(project, membership, done)
    order = [True, False] if wants_gold else [False, True]
    if project.qualification_gold_regions and membership.qualified_at is None:
        order = [True]  # unqualified students see only gold regions
    for gold in order:
        assignment = _take_slot(project, user, gold)
        if assignment is not None:
            return assignment
    return None


def _take_slot(project: Project, user: object, gold: bool) -> Assignment | None:
    """Lock the first candidate region nobody else holds, re-count its slots, take one.

    One row is locked per pass (``ORDER BY ... LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED``): a crowd
    asking at once spreads over the candidates instead of queueing behind one caller that held
    twenty. SQLite has no row locks (Django drops the clause there) and serialises writers.
    """
    # Each pass either hands out a slot, or finds its region full (a parallel caller's slot
    # committed after this pass's snapshot) and tries again; the next pass no longer lists that
    # region. The bound only guards against pathological churn.
    for _attempt in range(50):
        with transaction.atomic():
            candidates = _open_regions(project, user, gold)
            # FOR NO KEY UPDATE: excludes other callers, yet not the foreign-key checks of rows
            # that merely point at the region (a draft's first save), which take KEY SHARE.
            region = candidates.select_for_update(
                skip_locked=True, of=("self",), no_key=True
            ).first()
            if region is None:
                first = candidates.values_list("pk", flat=True).first()
                if first is None:
                    return None
                # Every candidate is held by another caller right now: wait for one rather than
                # report "nothing left" while slots are free.
                region = Region.objects.select_for_update(no_key=True).filter(pk=first).first()
                if region is None:
                    continue
            # Re-read under the lock: the ordering's count came from a snapshot taken before it.
            taken = region.assignments.filter(status__in=_COUNTING).count()
            if not gold and taken >= project.redundancy_k + region.extra_slots:
                continue
            try:
                with transaction.atomic():
                    return Assignment.objects.create(
                        region=region,
                        annotator=user,
                        expires_at=timezone.now() + project.assignment_expiry,
                    )
            except IntegrityError:
                continue  # this annotator took it in a parallel request
    return None


@transaction.atomic
def assignment_release(*, assignment: Assignment) -> Assignment:
    """A manager frees a slot; the annotator's draft stays theirs but no longer counts."""
    Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.RELEASED
    )
    assignment.refresh_from_db()
    return assignment


@transaction.atomic
def assignment_reassign(*, assignment: Assignment, to_user: object) -> Assignment:
    """Move an active slot to another annotator of the project."""
    project = assignment.region.project
    membership = Membership.objects.filter(project=project, user=to_user).first()
    if membership is None or membership.role != Role.ANNOTATOR or membership.excluded:
        raise AssignmentError("the new annotator must be an active annotator of the project")
    if Assignment.objects.filter(region=assignment.region, annotator=to_user).exists():
        raise AssignmentError("that annotator already had this region")
    released = Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.RELEASED
    )
    if not released:
        raise AssignmentError("only an active assignment can be reassigned")
    return Assignment.objects.create(
        region=assignment.region,
        annotator=to_user,
        expires_at=timezone.now() + project.assignment_expiry,
    )


def assignment_for_expert(*, region: Region, user: object) -> Assignment:
    """A slot for the expert outlining a gold region (outside the k of annotators)."""
    assignment, _ = Assignment.objects.get_or_create(
        region=region,
        annotator=user,
        defaults={"expires_at": timezone.now() + dt.timedelta(days=3650)},
    )
    return assignment
