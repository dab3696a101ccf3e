"""Small builders for test rows (plain functions: the models are few and simple)."""

from __future__ import annotations

import itertools
from pathlib import Path

from django.contrib.auth import get_user_model

from annotation.models import Membership, Project, Role
from slides.models import Slide
from slides.services import slide_ingest, slide_register

PASSWORD = "correct-horse-battery-9"
_counter = itertools.count(1)


def make_user(username: str | None = None, **extra: object) -> object:
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


def make_project(
    manager: object | None = None, target_mpp: float = 0.5, **extra: object
) -> Project:
    n = next(_counter)
    project = Project.objects.create(
        name=extra.pop("name", f"Project {n}"),
        slug=extra.pop("slug", f"project-{n}"),
        target_mpp=target_mpp,
        **extra,
    )
    if manager is not None:
        Membership.objects.create(project=project, user=manager, role=Role.MANAGER)
    return project


def add_member(project: Project, user: object, role: str) -> Membership:
    return Membership.objects.create(project=project, user=user, role=role)


def ingested_slide(path: Path, project: Project | None = None, **extra: object) -> Slide:
    """Register and ingest a slide in this process (services called directly, no worker)."""
    slide, _ = slide_register(path=str(path), **extra)
    slide_ingest(slide_id=slide.pk)
    slide.refresh_from_db()
    if project is not None:
        project.slides.add(slide)
    return slide
