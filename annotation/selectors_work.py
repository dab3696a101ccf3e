"""Reads for an annotator's "my work" page: their queue, recent submissions and counts."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from annotation.models import Assignment, AssignmentStatus, Project, Submission, SubmissionStatus
from annotation.selectors import assignments_visible_to

RECENT_LIMIT = 10


@dataclass(frozen=True)
class QueueItem:
    """An active assignment and the annotator's draft of its region, if they started one."""

    assignment: Assignment
    draft: Submission | None


def _own_assignments(user: object, project: Project) -> QuerySet[Assignment]:
    # Through the permission filter, then narrowed to the user's own: a manager's page lists
    # only what they annotate themselves.
    return (
        assignments_visible_to(user)
        .filter(annotator=user, region__project=project)
        .select_related("region__slide")
    )


def annotator_queue(user: object, project: Project) -> list[QueueItem]:
    """The user's active assignments in the project, oldest first, each with its draft."""
    active = list(
        _own_assignments(user, project)
        .filter(status=AssignmentStatus.ACTIVE)
        .order_by("assigned_at", "pk")
    )
    drafts = {
        s.region_id: s
        for s in Submission.objects.filter(
            annotator=user, region__in=[a.region_id for a in active]
        ).prefetch_related("shapes")
    }
    return [QueueItem(assignment=a, draft=drafts.get(a.region_id)) for a in active]


def annotator_recent(user: object, project: Project, limit: int = RECENT_LIMIT) -> list[Assignment]:
    """The user's most recently submitted assignments in the project, newest first."""
    return list(
        _own_assignments(user, project)
        .filter(status=AssignmentStatus.SUBMITTED)
        .order_by("-submitted_at", "-pk")[:limit]
    )


def annotator_submitted_count(user: object, project: Project) -> int:
    """How many of the project's regions the user has submitted."""
    return Submission.objects.filter(
        annotator=user, region__project=project, status=SubmissionStatus.SUBMITTED
    ).count()


def annotator_closed(user: object, project: Project, limit: int = RECENT_LIMIT) -> list[object]:
    """The user's submitted regions that are closed, newest first, each as a Feedback (their
    outline against the final answer, with the Dice): what the "My work" page lists."""
    from annotation.models import RegionOrigin
    from annotation.selectors_consensus import final_answer_shapes
    from annotation.selectors_dashboard import feedback_for

    found = []
    rows = (
        Submission.objects.filter(
            annotator=user, region__project=project, status=SubmissionStatus.SUBMITTED
        )
        .exclude(region__origin=RegionOrigin.GOLD)
        .select_related("region")
        .order_by("-submitted_at", "-pk")
    )
    for submission in rows[: limit * 5]:
        if final_answer_shapes(submission.region) is not None:
            found.append(feedback_for(user, submission.pk))
        if len(found) == limit:
            break
    return found
