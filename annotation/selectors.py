"""Reads on projects, always filtered by membership (``access_project``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import Membership, Project, Role


def projects_for(user: object) -> QuerySet[Project]:
    """Projects the user is a member of."""
    if not getattr(user, "is_authenticated", False):
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user).distinct()


def role_in(user: object, project: Project) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def access_project(user: object, project_id: int, roles: Iterable[str] | None = None) -> Project:
    """The project if the user is a member (with one of ``roles`` when given), else 404.

    A member without the role gets 404 too, like an outsider: the API never confirms which
    projects exist to someone who may not act on them.
    """
    memberships = Membership.objects.filter(project_id=project_id, user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    if not getattr(user, "is_authenticated", False) or not memberships.exists():
        raise Http404("No such project.")
    return Project.objects.get(pk=project_id)


def access_project_as_manager(user: object, project_id: int) -> Project:
    return access_project(user, project_id, roles=[Role.MANAGER])


# --- regions, assignments, submissions -------------------------------------------------------

_SEES_ALL_REGIONS = (Role.MANAGER, Role.EXPERT, Role.RESEARCHER)


def project_ids_seeing_origin(user: object) -> set[int]:
    """Projects where the user may tell gold regions from ordinary ones (not as an annotator).

    Decided per region's project: an expert in one project who annotates in another never sees
    the second project's origins.
    """
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(
        Membership.objects.filter(user=user, role__in=_SEES_ALL_REGIONS).values_list(
            "project_id", flat=True
        )
    )


def regions_visible_to(user: object) -> QuerySet:
    """Managers, experts and researchers see their projects' regions; annotators only those
    they were assigned (the rest of the campaign is none of their business)."""
    from annotation.models import Region

    if not getattr(user, "is_authenticated", False):
        return Region.objects.none()
    broad = Region.objects.filter(
        project__memberships__user=user, project__memberships__role__in=_SEES_ALL_REGIONS
    )
    own = Region.objects.filter(
        assignments__annotator=user,
        project__memberships__user=user,
        project__memberships__role=Role.ANNOTATOR,
    )
    return (broad | own).distinct()


def access_region(user: object, region_id: int) -> object:
    region = (
        regions_visible_to(user).filter(pk=region_id).select_related("project", "slide").first()
    )
    if region is None:
        raise Http404("No such region.")
    return region


def assignments_visible_to(user: object) -> QuerySet:
    """An annotator's own assignments; all assignments of the projects a user manages."""
    from annotation.models import Assignment

    if not getattr(user, "is_authenticated", False):
        return Assignment.objects.none()
    managed = Assignment.objects.filter(
        region__project__memberships__user=user, region__project__memberships__role=Role.MANAGER
    )
    own = Assignment.objects.filter(annotator=user, region__project__memberships__user=user)
    return (managed | own).distinct()


def access_assignment(user: object, assignment_id: int) -> object:
    assignment = (
        assignments_visible_to(user)
        .filter(pk=assignment_id)
        .select_related("region__project", "region__slide", "annotator")
        .first()
    )
    if assignment is None:
        raise Http404("No such assignment.")
    return assignment


def submissions_visible_to(user: object, region: object) -> QuerySet:
    """Blind annotation: an annotator sees only their own work; drafts are private to their
    author; managers and experts see every submitted one; researchers too."""
    from annotation.models import Submission, SubmissionStatus

    role = role_in(user, region.project)
    own = Submission.objects.filter(region=region, annotator=user)
    if role in _SEES_ALL_REGIONS:
        others = Submission.objects.filter(region=region, status=SubmissionStatus.SUBMITTED)
        return (own | others).distinct()
    return own
