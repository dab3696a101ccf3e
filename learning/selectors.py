"""Reads of the learning app, always through project membership and role (outsiders: 404)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import Http404

from annotation.models import Project, Role
from annotation.selectors import access_project
from learning.models import ModelVersion, Proposal, Round, TrainingRun

# Rounds, runs and model versions: everyone but annotators (blind to the machine's answers).
LEARNING_READERS = (Role.MANAGER, Role.EXPERT, Role.RESEARCHER)
LEARNING_MANAGERS = (Role.MANAGER,)


def access_learning_project(
    user: object, project_id: int, roles: Iterable[str] = LEARNING_READERS
) -> Project:
    return access_project(user, project_id, roles=roles)


def member_rows(model: type, user: object, roles: Iterable[str]) -> QuerySet:
    """Rows of ``model`` (with a ``project``) in projects where the user has one of ``roles``."""
    if not getattr(user, "is_authenticated", False):
        return model.objects.none()
    return model.objects.filter(
        project__memberships__user=user, project__memberships__role__in=list(roles)
    )


def access_round(user: object, round_id: int, roles: Iterable[str] = LEARNING_READERS) -> Round:
    found = member_rows(Round, user, roles).filter(pk=round_id).select_related("project").first()
    if found is None:
        raise Http404("No such round.")
    return found


def access_training_run(
    user: object, run_id: int, roles: Iterable[str] = LEARNING_READERS
) -> TrainingRun:
    found = member_rows(TrainingRun, user, roles).filter(pk=run_id).first()
    if found is None:
        raise Http404("No such training run.")
    return found


def model_versions_visible_to(user: object) -> QuerySet[ModelVersion]:
    return member_rows(ModelVersion, user, LEARNING_READERS).distinct()


def access_model_version(user: object, version_id: int) -> ModelVersion:
    found = model_versions_visible_to(user).filter(pk=version_id).first()
    if found is None:
        raise Http404("No such model version.")
    return found


def rounds_of(project: Project) -> QuerySet[Round]:
    return Round.objects.filter(project=project).select_related("model_version").order_by("-number")


def proposals_of(version: ModelVersion) -> QuerySet[Proposal]:
    return (
        Proposal.objects.filter(model_version=version)
        .select_related("region")
        .order_by("round_id", "rank")
    )
