"""Hand-made consensus runs, submissions and gold work for the dashboard and feedback tests."""

from __future__ import annotations

import itertools

from django.utils import timezone

from annotation.models import ConsensusRun, Region, Submission
from tests.annotation.merge_helpers import submit

_hashes = itertools.count(1)


def make_region(
    project: object,
    slide: object,
    origin: str = "seeded",
    x: int = 1000,
    y: int = 1000,
    side: int = 100,
    extra_slots: int = 0,
) -> Region:
    return Region.objects.create(
        project=project,
        slide=slide,
        x=x,
        y=y,
        width=side,
        height=side,
        origin=origin,
        extra_slots=extra_slots,
    )


def make_run(
    region: Region, dice: float, status: str = "accepted", contested_fraction: float = 0.0
) -> ConsensusRun:
    """A consensus run with the given figures and no arrays (the dashboard reads only figures)."""
    return ConsensusRun.objects.create(
        region=region,
        inputs_hash=f"hand-made-{next(_hashes)}",
        inputs=[],
        method="majority_vote",
        class_ids=[None],
        height=100,
        width=100,
        downsample=1.0,
        arrays_path="none.npz",
        arrays_digest="0" * 64,
        dice=dice,
        contested_fraction=contested_fraction,
        contested_pixels=round(contested_fraction * 10_000),
        status=status,
    )


def submitted(
    region: Region, user: object, seconds: float = 60.0, gold_dice: float | None = None
) -> Submission:
    """A submitted submission row without shapes (throughput and slot counts only)."""
    return Submission.objects.create(
        region=region,
        annotator=user,
        status="submitted",
        outcome="nothing",
        time_spent_seconds=seconds,
        gold_dice=gold_dice,
        submitted_at=timezone.now(),
    )


def gold_pair(
    project: object, slide: object, expert: object, student: object, label: object, shift: int = 10
) -> tuple[Submission, Submission]:
    """A gold region outlined by the expert (a 40-px square) and then by the student, shifted.

    The student's square overlaps the expert's by (40 - shift) x 40 px, so their Dice is
    (40 - shift) / 40: 0.75 for the default shift.
    """
    region = make_region(project, slide, origin="gold", x=2000, y=1500)
    reference = submit(region, expert, [(2010, 1510, 40)], label)
    own = submit(region, student, [(2010 + shift, 1510, 40)], label)
    own.refresh_from_db()
    return reference, own


def matrix_url(world: dict, name: str) -> str:
    """URL of a dashboard page for the permission matrix's world (see test_permission_matrix).

    The feedback row needs the assignee's submitted gold work: a gold region outlined by the
    expert, then by the assignee. Skips while config/urls.py does not route the pages yet.
    """
    import pytest
    from django.urls import NoReverseMatch, reverse

    from annotation.models import LabelClass

    try:
        reverse("dashboard:project", kwargs={"project_id": world["project"].pk})
    except NoReverseMatch:
        pytest.skip("config/urls.py does not include annotation.dashboard_urls yet")
    if name == "dashboard:feedback":
        label = LabelClass.objects.filter(project=world["project"]).first()
        region = make_region(world["project"], world["slide"], origin="gold", x=1500, y=1500)
        submit(region, world["users"]["expert"], [(1510, 1510, 40)], label)
        own = submit(region, world["users"]["assignee"], [(1520, 1510, 40)], label)
        return reverse(name, kwargs={"submission_id": own.pk})
    return reverse(name, kwargs={"project_id": world["project"].pk})
