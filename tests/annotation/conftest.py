"""A small campaign: CMU-1-Small-Region, two classes, a manager, an expert, four students."""

from __future__ import annotations

import pytest

from annotation.models import LabelClass
from tests.factories import add_member, ingested_slide, make_project, make_user


@pytest.fixture
def campaign(db, slides_dir):
    manager, expert = make_user("mgr"), make_user("exp")
    students = [make_user(f"s{i}") for i in range(4)]
    researcher = make_user("res")
    # CMU is 0.499 um/px; at 1.0 um/px a 256-px region is 513 level-0 px a side.
    project = make_project(
        manager, target_mpp=1.0, region_size=256, redundancy_k=3, gold_mix_rate=0.0
    )
    add_member(project, expert, "expert")
    add_member(project, researcher, "researcher")
    for student in students:
        add_member(project, student, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    tumour = LabelClass.objects.create(project=project, name="tumour", color="#ff0000", order=1)
    stroma = LabelClass.objects.create(project=project, name="stroma", color="#00ff00", order=2)
    LabelClass.objects.create(
        project=project, name="none", color="#ffffff", order=0, is_background=True
    )
    return {
        "project": project,
        "slide": slide,
        "manager": manager,
        "expert": expert,
        "students": students,
        "researcher": researcher,
        "tumour": tumour,
        "stroma": stroma,
    }


def square(x: float, y: float, side: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]],
    }
