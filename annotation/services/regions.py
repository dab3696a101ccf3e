"""Creating regions: drawn by managers, gold standard by experts, seeded on tissue."""

from __future__ import annotations

import numpy as np
from django.db import transaction
from PIL import Image

from annotation.models import Project, Region, RegionOrigin
from annotation.placement import tissue_boxes
from slides.models import Slide, SlideStatus


class RegionError(ValueError):
    """A region that cannot be made (outside the slide, slide not ready, no mpp)."""


def region_side_level0(project: Project, slide: Slide) -> int:
    """The project's region size (pixels at target_mpp) in the slide's level-0 pixels."""
    if not slide.mpp:
        raise RegionError(f"slide {slide.pk} has no mpp: a manager must set it first")
    return max(1, round(project.region_size * project.target_mpp / slide.mpp))


def region_create(
    *,
    project: Project,
    slide: Slide,
    x: int,
    y: int,
    width: int,
    height: int,
    origin: str,
    created_by: object | None,
    round_number: int = 0,
    learning_ref: str = "",
) -> Region:
    """A region inside the slide, on a slide of the project."""
    if not project.slides.filter(pk=slide.pk).exists():
        raise RegionError("the slide is not in this project")
    if slide.status != SlideStatus.READY:
        raise RegionError("the slide is not ready")
    if width <= 0 or height <= 0 or x < 0 or y < 0:
        raise RegionError("a region needs a positive size and a non-negative origin")
    if x + width > slide.width or y + height > slide.height:
        raise RegionError(f"the region leaves the slide ({slide.width}x{slide.height})")
    if origin not in RegionOrigin.values:
        raise RegionError(f"unknown origin {origin!r}")
    return Region.objects.create(
        project=project,
        slide=slide,
        x=x,
        y=y,
        width=width,
        height=height,
        origin=origin,
        created_by=created_by,
        round_number=round_number,
        learning_ref=learning_ref,
    )


@transaction.atomic
def regions_seed(
    *,
    project: Project,
    per_slide: int,
    seed: int,
    created_by: object | None,
    min_tissue: float = 0.6,
) -> list[Region]:
    """Round 0: ``per_slide`` non-overlapping regions on each ready slide's tissue mask."""
    rng = np.random.default_rng(seed)
    created: list[Region] = []
    slides = project.slides.filter(status=SlideStatus.READY).order_by("pk")
    for slide in slides.select_for_update():
        if not slide.mpp:
            continue
        side = region_side_level0(project, slide)
        mask = np.asarray(Image.open(slide.tissue_mask).convert("L")) > 127
        scale = slide.width / mask.shape[1]
        existing = [r.bounds for r in Region.objects.filter(project=project, slide=slide)]
        boxes = tissue_boxes(
            mask,
            scale,
            side,
            per_slide,
            existing,
            rng,
            min_tissue=min_tissue,
            slide_size=(slide.width, slide.height),
        )
        created.extend(
            Region.objects.bulk_create(
                Region(
                    project=project,
                    slide=slide,
                    x=b[0],
                    y=b[1],
                    width=b[2] - b[0],
                    height=b[3] - b[1],
                    origin=RegionOrigin.SEEDED,
                    created_by=created_by,
                )
                for b in boxes
            )
        )
    return created
