"""Writes on projects and memberships, and importing slides into a project."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.models import Membership, Project, Role
from slides.archives import ArchiveLimits, extract_zip, find_main_file, refuse_other_archives
from slides.models import Slide
from slides.selectors import forget_tile_access
from slides.services import case_key_from_name, slide_register

User = get_user_model()


@transaction.atomic
def project_create(
    *, name: str, slug: str, target_mpp: float, created_by: object, description: str = ""
) -> Project:
    """A new project; its creator becomes its first manager."""
    project = Project.objects.create(
        name=name,
        slug=slug,
        target_mpp=target_mpp,
        description=description,
        created_by=created_by,
    )
    Membership.objects.create(project=project, user=created_by, role=Role.MANAGER)
    return project


@transaction.atomic
def membership_set(*, project: Project, user: object, role: str) -> Membership:
    """Add a member or change their role."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(Role.values)}")
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    _forget_access(project, [user.pk])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    project, user_id = membership.project, membership.user_id
    membership.delete()
    _forget_access(project, [user_id])


def _forget_access(project: Project, user_ids: list[int]) -> None:
    for slide_id in project.slides.values_list("pk", flat=True):
        forget_tile_access(slide_id, user_ids)


@transaction.atomic
def project_add_slide_by_path(
    *,
    project: Project,
    path: str,
    created_by: object,
    case_key: str = "",
    case_key_pattern: str | None = None,
) -> tuple[Slide, bool]:
    """Register a server file under SLIDE_ROOTS in the project: a row of the project's own.

    A file another project holds gets a new row here (ProjectSlide says why); the same file
    twice in this project returns its existing row.
    """
    if not case_key:
        case_key = case_key_from_name(Path(path).name, case_key_pattern)
    # Serialise registrations into one project (PostgreSQL; SQLite's IMMEDIATE transactions
    # already do), so two requests for one file cannot both create a row.
    Project.objects.select_for_update().filter(pk=project.pk).exists()
    slide, created = slide_register(
        path=path, created_by=created_by, case_key=case_key, within=project.slides.all()
    )
    project.slides.add(slide)
    return slide, created


def project_add_uploaded_slide(
    *,
    project: Project,
    uploaded_path: Path,
    original_name: str,
    created_by: object,
    case_key: str = "",
) -> Slide:
    """Move an upload (a slide file, or a zip of a multi-file slide) into the upload root.

    Zips are unpacked with the caps of ARCHIVE_MAX_*; a refused archive leaves nothing behind.
    """
    safe_name = Path(original_name.replace("\\", "/")).name
    if safe_name in ("", ".", ".."):
        safe_name = "slide"
    target_dir = settings.SLIDE_UPLOAD_ROOT / uuid.uuid4().hex
    refuse_other_archives(uploaded_path, safe_name)
    if safe_name.lower().endswith(".zip"):
        files = extract_zip(
            uploaded_path,
            target_dir,
            ArchiveLimits(
                settings.ARCHIVE_MAX_MEMBERS,
                settings.ARCHIVE_MAX_TOTAL_BYTES,
                settings.ARCHIVE_MAX_RATIO,
            ),
        )
        try:
            main_file = find_main_file(files)
        except ValueError:
            shutil.rmtree(target_dir, ignore_errors=True)
            raise
    else:
        target_dir.mkdir(parents=True)
        main_file = target_dir / safe_name
        shutil.move(str(uploaded_path), main_file)
    with transaction.atomic():
        slide, _ = slide_register(
            path=str(main_file),
            created_by=created_by,
            case_key=case_key,
            uploaded=True,
            within=project.slides.all(),
        )
        project.slides.add(slide)
    return slide


@transaction.atomic
def project_remove_slide(*, project: Project, slide: Slide) -> None:
    project.slides.remove(slide)
    forget_tile_access(slide.pk, list(project.memberships.values_list("user_id", flat=True)))
