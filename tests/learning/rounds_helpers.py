"""A small active-learning campaign on two synthetic slides with exact ground truth.

Students outline the ground-truth glands (from the generator's GeoJSON) through the submission
services, so every region's consensus is accepted; the helpers here then drive one round's
steps through the services, as the worker would.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import shapely
from django.conf import settings
from django.utils import timezone
from shapely.geometry import box as shapely_box
from shapely.geometry import mapping

from annotation.models import Assignment, LabelClass, Region
from annotation.services.merge import merge_region
from annotation.services.regions import regions_seed
from annotation.services.submissions import ShapeInput, submission_save_draft, submission_submit
from tests.factories import add_member, ingested_slide, make_project, make_user

SLIDE_SIDE = 2048


def synthetic_slides() -> list[tuple[Path, Path]]:
    """Two 2048² synthetic slides (0.5 um/px) under the test slide root; (slide, geojson)."""
    from slides.synthetic import SyntheticSpec, write_synthetic_slide

    folder = Path(settings.SLIDE_ROOTS[-1]) / "learning"
    out = []
    for seed in (11, 12):
        name = f"al-{seed}"
        if not (folder / f"{name}.tiff").exists():
            spec = SyntheticSpec(SLIDE_SIDE, SLIDE_SIDE, seed=seed, tissue_coverage=0.6)
            write_synthetic_slide(folder, name, spec)
        out.append((folder / f"{name}.tiff", folder / f"{name}.geojson"))
    return out


def gland_truth(geojson: Path) -> shapely.Geometry:
    """The union of the ground-truth glands, level-0 px."""
    features = json.loads(geojson.read_text())["features"]
    glands = [
        shapely.geometry.shape(f["geometry"])
        for f in features
        if f["properties"]["classification"]["name"] == "gland"
    ]
    return shapely.union_all(glands)


def make_campaign(*, students: int = 2, per_slide: int = 3) -> dict:
    manager, expert = make_user("al-mgr"), make_user("al-exp")
    annotators = [make_user(f"al-s{i}") for i in range(students)]
    # 1 um/px on 0.5 um/px slides: a 128-px region is 256 level-0 px, a slide 1024 px.
    project = make_project(
        manager,
        target_mpp=1.0,
        region_size=128,
        redundancy_k=2,
        redundancy_k_max=3,
        gold_mix_rate=0.0,
        round_size=4,
        round_quota=0.5,
        strategy="entropy",
    )
    add_member(project, expert, "expert")
    for student in annotators:
        add_member(project, student, "annotator")
    LabelClass.objects.create(project=project, name="none", order=0, is_background=True)
    gland = LabelClass.objects.create(project=project, name="gland", color="#e65028", order=1)
    truths = {}
    for path, geojson in synthetic_slides():
        slide = ingested_slide(path, project)
        truths[slide.pk] = gland_truth(geojson)
    regions = regions_seed(project=project, per_slide=per_slide, seed=1, created_by=manager)
    return {
        "project": project,
        "manager": manager,
        "expert": expert,
        "students": annotators,
        "gland": gland,
        "truths": truths,
        "regions": regions,
    }


def outline(region: Region, truth: shapely.Geometry) -> list[dict]:
    """The ground-truth glands inside the region as GeoJSON polygons."""
    clipped = truth.intersection(shapely_box(*region.bounds))
    parts = getattr(clipped, "geoms", [clipped])
    return [mapping(p) for p in parts if p.geom_type == "Polygon" and p.area > 4]


def submit_shapes(region: Region, user: object, shapes: list[dict], label: LabelClass) -> None:
    assignment, _ = Assignment.objects.get_or_create(
        region=region,
        annotator=user,
        defaults={"expires_at": timezone.now() + dt.timedelta(days=1)},
    )
    version = 1
    if shapes:
        submission_save_draft(
            assignment=assignment,
            expected_version=1,
            shapes=[ShapeInput(label.pk, s) for s in shapes],
        )
        version = 2
    submission_submit(
        assignment=assignment,
        expected_version=version,
        outcome="shapes" if shapes else "nothing",
        user=user,
    )


def label_truthfully(campaign: dict, regions: list[Region], merge: bool = True) -> None:
    """Every student outlines the truth in each region; then each region is merged."""
    for region in regions:
        shapes = outline(region, campaign["truths"][region.slide_id])
        for student in campaign["students"]:
            submit_shapes(region, student, shapes, campaign["gland"])
        if merge:
            merge_region(region_id=region.pk)
