"""A small research project with accepted answers built through the real services: synthetic
slides (0.5 um/px, the project's target, so masks are level-0 pixels), three annotators with
distinctive names, regions outlined, merged by ``merge_region``; plus the permission-matrix
rows of the export URLs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from django.conf import settings

from annotation.models import LabelClass, Project
from annotation.services.merge import merge_region
from slides.models import Slide
from slides.synthetic import SyntheticSpec, write_synthetic_slide
from tests.annotation.merge_helpers import region, submit
from tests.factories import add_member, ingested_slide, make_project, make_user

USERNAMES = ("zelda-quinterro", "yorick-ballantyne", "xenia-moorcroft")
SLIDE_STEMS = ("patient-hawthorne-001", "patient-hawthorne-002", "patient-lindqvist-003")
CASES = ("MRN-778812", "MRN-778812", "MRN-991203")  # two slides of one case
SLIDE_SIDE = 1536


def synthetic_slides() -> list[Path]:
    """Three small synthetic slides under the test slide root (written once per session)."""
    folder = Path(settings.SLIDE_ROOTS[-1]) / "export-tests"
    paths = []
    for seed, stem in enumerate(SLIDE_STEMS, start=1):
        path = folder / f"{stem}.tiff"
        if not path.exists():
            write_synthetic_slide(folder, stem, SyntheticSpec(SLIDE_SIDE, SLIDE_SIDE, seed=seed))
        paths.append(path)
    return paths


def export_world(regions_per_slide: int = 2, side: int = 300) -> dict:
    """Manager, researcher, expert, annotator-only member, three annotators; three slides,
    each with ``regions_per_slide`` accepted regions (majority vote)."""
    manager, researcher, expert = make_user("mgr"), make_user("res"), make_user("exp")
    annotators = [make_user(name) for name in USERNAMES]
    lurker = make_user("lurker")
    project = make_project(manager, target_mpp=0.5, redundancy_k=3, region_size=side)
    Project.objects.filter(pk=project.pk).update(
        consensus_method="majority_vote",
        license_text="CC BY 4.0: https://creativecommons.org/licenses/by/4.0/",
        citation="Doe J. et al. A crowd of glands. 2026.",
    )
    project.refresh_from_db()
    add_member(project, researcher, "researcher")
    add_member(project, expert, "expert")
    add_member(project, lurker, "annotator")
    for user in annotators:
        add_member(project, user, "annotator")
    LabelClass.objects.create(project=project, name="none", color="#ffffff", is_background=True)
    gland = LabelClass.objects.create(project=project, name="gland", color="#e65028", order=1)
    stroma = LabelClass.objects.create(project=project, name="stroma", color="#50c878", order=2)
    # k = 4 while three submit, so no merge is queued on commit (a live worker would run it);
    # the merges are then run here, through the service, at k = 3.
    Project.objects.filter(pk=project.pk).update(redundancy_k=4)
    project.refresh_from_db()
    slides, regions = [], []
    for path, case in zip(synthetic_slides(), CASES, strict=True):
        slide = ingested_slide(path, project)
        Slide.objects.filter(pk=slide.pk).update(case_key=case)
        slide.refresh_from_db()
        slides.append(slide)
        for n in range(regions_per_slide):
            x = y = 200 + n * (side + 100)
            regions.append(
                outlined_region(project, slide, annotators, (gland, stroma), x, y, n, side)
            )
    Project.objects.filter(pk=project.pk).update(redundancy_k=3)
    project.refresh_from_db()
    runs = [merge_region(region_id=reg.pk) for reg in regions]
    return {
        "project": project,
        "manager": manager,
        "researcher": researcher,
        "expert": expert,
        "lurker": lurker,
        "annotators": annotators,
        "slides": slides,
        "regions": regions,
        "runs": runs,
        "gland": gland,
        "stroma": stroma,
    }


def outlined_region(
    project: Project,
    slide: Slide,
    annotators: list,
    classes: tuple,
    x: int,
    y: int,
    n: int,
    side: int,
) -> object:
    """A region at (x, y) outlined by the three annotators: a 120-px gland square at (20, 30)
    of the region (the third annotator's 3 px to the right) and, when ``n`` is even, a 90-px
    stroma square at (170, 160) (the third annotator's 3 px lower)."""
    gland, stroma = classes
    reg = region(project, slide, x=x, y=y, side=side)
    for i, user in enumerate(annotators):
        shift = 3 if i == 2 else 0
        squares = [(x + 20 + shift, y + 30, 120), (x + 170, y + 160 + shift, 90)]
        if n % 2:
            submit(reg, user, squares[:1], gland)
        else:
            _submit_two(reg, user, squares, gland, stroma)
    return reg


def _submit_two(reg, user, squares, gland, stroma) -> None:
    """A gland square and a stroma square, through the submission services."""
    import datetime as dt

    from django.utils import timezone

    from annotation.models import Assignment
    from annotation.services.submissions import (
        ShapeInput,
        submission_save_draft,
        submission_submit,
    )
    from tests.annotation.conftest import square

    assignment, _ = Assignment.objects.get_or_create(
        region=reg, annotator=user, defaults={"expires_at": timezone.now() + dt.timedelta(days=1)}
    )
    (x1, y1, s1), (x2, y2, s2) = squares
    submission_save_draft(
        assignment=assignment,
        expected_version=1,
        shapes=[
            ShapeInput(gland.pk, square(x1, y1, s1)),
            ShapeInput(stroma.pk, square(x2, y2, s2)),
        ],
    )
    submission_submit(assignment=assignment, expected_version=2, outcome="shapes", user=user)


def open_archive(export: object) -> zipfile.ZipFile:
    path = Path(settings.MEDIA_ROOT) / export.file_path
    return zipfile.ZipFile(io.BytesIO(path.read_bytes()))


# --- permission matrix ------------------------------------------------------------------------

EXPORT_NAMES = (
    "project-training-exports",
    "training-export-detail",
    "training-export-download",
    "training-export-lineage",
    "project-research-agreement",
    "project-research-model-versions",
    "exports:page",
)


def matrix_url(world: dict, name: str) -> str:
    """URL of an export endpoint for the permission matrix's world (test_permission_matrix):
    one export of the world's project, built (no accepted regions: an empty training set)."""
    from django.urls import reverse

    from learning.exports.services import export_build
    from learning.models import TrainingExport

    project = world["project"]
    if name in (
        "project-training-exports",
        "project-research-agreement",
        "project-research-model-versions",
    ):
        return reverse(name, kwargs={"project_pk": project.pk})
    if name == "exports:page":
        return reverse(name, kwargs={"project_id": project.pk})
    export = TrainingExport.objects.filter(project=project).first()
    if export is None:
        export = TrainingExport.objects.create(project=project, config={})
        export_build(export_id=export.pk)
    return reverse(name, kwargs={"pk": export.pk})


def _only(allowed: dict[str, int], anonymous: int = 401) -> dict[str, int]:
    return {"anonymous": anonymous, **allowed}


_READERS = {"researcher": 200, "manager": 200}
_FIGURES = {"expert": 200, "researcher": 200, "manager": 200}

# (name, method, expected status per relation (others 404), body) for the permission matrix.
EXPORT_ROWS = [
    ("project-training-exports", "get", _only(_READERS), None),
    ("project-training-exports", "post", _only({"researcher": 201, "manager": 201}), {}),
    ("training-export-detail", "get", _only(_READERS), None),
    ("training-export-download", "get", _only(_READERS), None),
    ("training-export-lineage", "get", _only(_READERS), None),
    ("project-research-agreement", "get", _only(_FIGURES), None),
    ("project-research-model-versions", "get", _only(_FIGURES), None),
    ("exports:page", "get", _only(_READERS, anonymous=302), None),
    ("exports:page", "post", _only({"researcher": 302, "manager": 302}, anonymous=302), {}),
]
