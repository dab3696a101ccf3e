"""Exports stream to disk: the peak memory of a build does not grow with the number of patches.

Each build runs in its own Python process (``export_build`` on the committed rows of the test
database), which reports its own peak RSS, so pytest's memory does not blur the figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from annotation.models import LabelClass, Project
from annotation.services.merge import merge_region
from learning.models import TrainingExport
from slides.models import Slide
from tests.conftest import _database_url
from tests.factories import add_member, make_project
from tests.learning.export_helpers import export_world, outlined_region

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
SIDE = 1024  # region side, export pixels (0.5 um/px, the slides' own resolution)
CONFIG = {"patch_size": 256, "stride": 48}  # 17 x 17 = 289 patches per region
CHILD = """
import json, resource, sys
import django
django.setup()
from learning.exports.services import export_build
export = export_build(export_id=int(sys.argv[1]))
print(json.dumps({
    "status": export.status,
    "reason": export.failed_reason,
    "size": export.file_size,
    "patches": sum(split["patches"] for split in export.counts.values()),
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def _build_in_child(export: TrainingExport) -> dict:
    env = dict(os.environ)
    env["DATABASE_URL"] = _database_url(connection.settings_dict)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(export.pk)],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=400,
        check=True,
    )
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["status"] == "ready", report["reason"]
    return report


def _four_times_the_regions(world: dict) -> Project:
    """A second project on the same slides with four regions per slide where the first has one."""
    project = make_project(world["manager"], target_mpp=0.5, redundancy_k=4)
    Project.objects.filter(pk=project.pk).update(consensus_method="majority_vote")
    project.refresh_from_db()
    for user in world["annotators"]:
        add_member(project, user, "annotator")
    add_member(project, world["researcher"], "researcher")
    LabelClass.objects.create(project=project, name="none", is_background=True)
    gland = LabelClass.objects.create(project=project, name="gland", color="#e65028", order=1)
    stroma = LabelClass.objects.create(project=project, name="stroma", color="#50c878", order=2)
    regions = []
    for first in world["slides"]:
        # A slide row belongs to one project: the second project holds its own row of each
        # file, copied from the first project's ingested one (the same file, thumbnail, mpp).
        fields = Slide.objects.filter(pk=first.pk).values().get()
        for key in ("id", "created_at", "updated_at"):
            fields.pop(key, None)
        slide = Slide.objects.create(**fields)
        project.slides.add(slide)
        for n, offset in enumerate((200, 280, 360, 440)):
            regions.append(
                outlined_region(
                    project, slide, world["annotators"], (gland, stroma), offset, offset, n, SIDE
                )
            )
    Project.objects.filter(pk=project.pk).update(redundancy_k=3)
    for region in regions:
        assert merge_region(region_id=region.pk).status == "accepted"
    return project


def test_peak_memory_of_a_build_does_not_grow_with_the_number_of_patches(settings):
    settings.TILE_PREBUILD_MAX_TILES = 0
    world = export_world(regions_per_slide=1, side=SIDE)
    assert all(run.status == "accepted" for run in world["runs"])
    bigger = _four_times_the_regions(world)
    small = _build_in_child(TrainingExport.objects.create(project=world["project"], config=CONFIG))
    large = _build_in_child(TrainingExport.objects.create(project=bigger, config=CONFIG))
    assert large["patches"] == 4 * small["patches"] == 4 * 3 * 289
    # N was chosen so that the 4N archive is at least 200 MB larger than the N one.
    assert large["size"] - small["size"] >= 200 * 10**6, (small, large)
    grown = (large["peak_rss_kib"] - small["peak_rss_kib"]) / 1024
    assert grown <= 50, f"peak RSS grew by {grown:.0f} MiB: N {small}, 4N {large}"
