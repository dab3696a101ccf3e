"""Teaching feedback: a student's gold outline against the expert's, with their Dice."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from annotation.selectors_dashboard import feedback_for

# The crop is rendered at most this many pixels a side (the overlay scales with it).
CROP_SIDE = 1024


def _crop_url(region: object, slide: object) -> str:
    """The region as a PNG from the crop API, at a resolution that keeps it near CROP_SIDE."""
    side = max(region.width, region.height)
    box = f"x={region.x}&y={region.y}&width={region.width}&height={region.height}"
    base = reverse("slide-crop", kwargs={"pk": slide.pk})
    if slide.mpp:
        mpp = slide.mpp * max(1.0, side / CROP_SIDE)
        return f"{base}?{box}&mpp={mpp:.6f}&format=jpeg&quality=90"
    downsamples = list(slide.level_downsamples or [1.0])
    level = max((i for i, d in enumerate(downsamples) if side / d >= CROP_SIDE / 2), default=0)
    return f"{base}?{box}&level={level}&format=jpeg&quality=90"


@login_required
def feedback(request: HttpRequest, submission_id: int) -> HttpResponse:
    """The author only, once submitted, on a gold region or a closed one (404 otherwise)."""
    fb = feedback_for(request.user, submission_id)
    region, project = fb.submission.region, fb.submission.region.project
    context = {
        "fb": fb,
        "region": region,
        "project": project,
        "crop_url": _crop_url(region, region.slide),
        "passed": fb.dice is not None and fb.dice >= project.qualification_min_dice,
        "missed": max(fb.expert_area - fb.overlap_area, 0.0),
        "extra": max(fb.own_area - fb.overlap_area, 0.0),
    }
    return render(request, "annotation/feedback.html", context)
