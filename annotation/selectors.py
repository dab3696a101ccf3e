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
