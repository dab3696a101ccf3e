"""Builders for merge tests: regions on the campaign slide at downsample 1, and submissions."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from annotation.models import Assignment, Region, Submission
from annotation.services.submissions import ShapeInput, submission_save_draft, submission_submit
from tests.annotation.conftest import square


def at_slide_resolution(project: object, slide: object) -> None:
    """Work at the slide's own mpp, so masks are level-0 pixels and Dice can be done by hand."""
    type(project).objects.filter(pk=project.pk).update(target_mpp=slide.mpp)
    project.refresh_from_db()


def region(project: object, slide: object, x: int = 1000, y: int = 1000, side: int = 100) -> Region:
    return Region.objects.create(
        project=project, slide=slide, x=x, y=y, width=side, height=side, origin="seeded"
    )


def submit(
    region: Region,
    user: object,
    squares: list[tuple[float, float, float]] = (),
    label: object = None,
    outcome: str = "shapes",
) -> Submission:
    """A submitted submission of ``squares`` (x, y, side) in level-0 pixels, through services."""
    assignment, _ = Assignment.objects.get_or_create(
        region=region,
        annotator=user,
        defaults={"expires_at": timezone.now() + dt.timedelta(days=1)},
    )
    version = 1
    if squares:
        submission_save_draft(
            assignment=assignment,
            expected_version=1,
            shapes=[ShapeInput(label.pk, square(x, y, s)) for x, y, s in squares],
        )
        version = 2
    return submission_submit(
        assignment=assignment,
        expected_version=version,
        outcome=outcome,
        user=user,
        cannot_assess_reason="out of focus" if outcome == "cannot_assess" else "",
    )
