"""A small crop cannot force a large read (issue 14, finding 5).

The audit's 633-byte crop read 144 Mpx at level 0 of a single-level slide. The crop API now
refuses, before reading, a crop whose reads at its pyramid level exceed
``CROP_MAX_SOURCE_PIXELS``, and lets heavy reads take only ``CROP_HEAVY_READS`` slots a process.
The real OpenSlide reader is wrapped (not mocked) to record what it is asked for, on the real
single-level CMU-1-Small-Region slide (2220 x 2967, mpp 0.499).
"""

from __future__ import annotations

import openslide
import pytest

import slides.readgate as readgate
from slides.models import SlideAccess
from tests.factories import add_member, ingested_slide, make_project, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

CAP = 1_000_000


@pytest.fixture
def reads(monkeypatch) -> list[tuple[int, tuple[int, int]]]:
    """(level, size) of every ``read_region`` call, passed on to the real reader."""
    seen: list[tuple[int, tuple[int, int]]] = []
    real = openslide.OpenSlide.read_region

    def recording(self, location, level, size):  # noqa: ANN001, ANN202 - OpenSlide's signature
        seen.append((level, tuple(size)))
        return real(self, location, level, size)

    monkeypatch.setattr(openslide.OpenSlide, "read_region", recording)
    return seen


@pytest.fixture
def cmu(slides_dir, client, settings):
    settings.TILE_PREBUILD_MAX_TILES = 0
    settings.CROP_MAX_SOURCE_PIXELS = CAP
    manager, student = make_user(), make_user()
    project = make_project(manager)
    add_member(project, student, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    assert slide.level_count == 1 and slide.mpp
    client.force_login(student)
    return slide


def _pixels(reads: list[tuple[int, tuple[int, int]]]) -> int:
    return sum(w * h for _, (w, h) in reads)


def test_a_coarse_crop_over_the_source_cap_is_refused_before_reading(cmu, client, reads):
    # The whole slide at mpp 1000 is a 1 x 1 px answer, read from level 0: 6.6 Mpx.
    url = f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=2220&height=2967&mpp=1000"
    response = client.get(url)
    assert response.status_code == 400, f"read {_pixels(reads)} px: {reads}"
    assert "CROP_MAX_SOURCE_PIXELS" in response.json()["detail"]
    assert reads == []
    assert not SlideAccess.objects.filter(slide=cmu).exists()
    # The audit's own request, a box far past this slide's edge: refused, nothing read.
    audit = client.get(f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=12000&height=12000&mpp=1000")
    assert audit.status_code == 400 and reads == []


@pytest.mark.parametrize(
    ("query", "expect"),
    [
        ("x=0&y=0&width=1000&height=1000", 200),  # exactly the cap at level 0
        ("x=0&y=0&width=1001&height=1000", 400),
        ("x=100&y=100&width=2000&height=500&mpp=0.998", 200),  # 1 Mpx read for a 0.25 Mpx answer
        ("x=0&y=0&width=2220&height=2967&mpp=7.985", 400),  # the whole slide for a 139 x 185 px
        ("x=1220&y=1967&width=1000&height=1000&mpp=50", 200),  # a corner, 10 x 10 px
        ("x=0&y=0&width=1500&height=1500&mpp=1000", 400),
    ],
)
def test_the_reader_never_receives_more_than_the_cap(cmu, client, reads, query, expect):
    response = client.get(f"/api/slides/{cmu.pk}/crop/?{query}")
    assert response.status_code == expect, f"read {_pixels(reads)} px: {reads}"
    if expect == 200:
        assert 0 < _pixels(reads) <= CAP
    else:
        assert reads == []


def test_heavy_reads_beyond_the_slots_are_503_with_retry_after(cmu, client, reads, settings):
    settings.CROP_HEAVY_SOURCE_PIXELS = 100_000
    settings.CROP_HEAVY_WAIT_SECONDS = 0.05
    gate = readgate.ReadGate(1)
    heavy = f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=600&height=600&mpp=2"  # 0.36 Mpx read
    light = f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=256&height=256"  # 0.07 Mpx
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readgate, "_gate", gate)
        with gate.slot(0):  # another request holds this process's one heavy-read slot
            busy = client.get(heavy)
            assert busy.status_code == 503, f"read {_pixels(reads)} px with the slot held"
            assert busy["Retry-After"] == "1"
            assert reads == []
            assert client.get(light).status_code == 200  # light reads never wait for a slot
            assert _pixels(reads) == 256 * 256
        assert client.get(heavy).status_code == 200
    assert _pixels(reads) == 256 * 256 + 600 * 600
