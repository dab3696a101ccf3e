"""Every real slide in ../shared/data ingests to READY and serves every deep-zoom level."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image

from slides.models import SlideStatus
from tests.factories import add_member, ingested_slide, make_project, make_user
from tests.slides.expected import MPP_NOT_LISTED, SLIDES

pytestmark = pytest.mark.django_db


def _dz_tile_extent(
    index: int, count: int, level_size: int, tile: int = 254, overlap: int = 1
) -> int:
    """Pixels of tile ``index`` along one axis, by the Deep Zoom definition: tiles of ``tile``
    pixels plus ``overlap`` on each side that has a neighbour."""
    start = index * tile - (overlap if index > 0 else 0)
    end = min(level_size, (index + 1) * tile + (overlap if index < count - 1 else 0))
    return end - start


@pytest.mark.parametrize("name", sorted(SLIDES))
def test_real_slide_ingests_with_readme_metadata_and_serves_every_level(name, slides_dir, client):
    vendor, width, height, levels, mpp = SLIDES[name]
    manager = make_user()
    project = make_project(manager)
    slide = ingested_slide(slides_dir / name, project)

    assert slide.status == SlideStatus.READY, slide.status_reason
    assert (slide.vendor, slide.width, slide.height, slide.level_count) == (
        vendor,
        width,
        height,
        levels,
    )
    if name not in MPP_NOT_LISTED:
        if mpp is None:
            assert slide.mpp is None
        else:
            assert slide.mpp == pytest.approx(mpp, abs=0.001)
    assert len(slide.checksum) == 64

    client.force_login(manager)
    dzi = client.get(f"/dz/{slide.pk}.dzi")
    assert dzi.status_code == 200
    top_w = int(dzi.content.split(b'Width="')[1].split(b'"')[0])
    top_h = int(dzi.content.split(b'Height="')[1].split(b'"')[0])
    # Deep Zoom: level n has ceil(size / 2**(max - n)) pixels; max = ceil(log2(longest side)).
    max_level = math.ceil(math.log2(max(top_w, top_h)))
    for level in range(max_level + 1):
        scale = 2 ** (max_level - level)
        lw, lh = math.ceil(top_w / scale), math.ceil(top_h / scale)
        cols, rows = math.ceil(lw / 254), math.ceil(lh / 254)
        for col, row in {(0, 0), (cols - 1, rows - 1)}:
            response = client.get(f"/dz/{slide.pk}_files/{level}/{col}_{row}.jpeg")
            assert response.status_code == 200, (level, col, row)
            image = Image.open(io.BytesIO(response.content))
            image.load()
            assert image.size == (_dz_tile_extent(col, cols, lw), _dz_tile_extent(row, rows, lh)), (
                level,
                col,
                row,
            )
        beyond = client.get(f"/dz/{slide.pk}_files/{level}/{cols}_{row}.jpeg")
        assert beyond.status_code == 404
    assert client.get(f"/dz/{slide.pk}_files/{max_level + 1}/0_0.jpeg").status_code == 404


def test_annotator_of_another_project_sees_nothing_of_a_ready_slide(slides_dir, client):
    manager, outsider = make_user(), make_user()
    project = make_project(manager)
    other = make_project(manager)
    add_member(other, outsider, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    client.force_login(outsider)
    assert client.get(f"/dz/{slide.pk}.dzi").status_code == 404
    assert client.get(f"/dz/{slide.pk}_files/0/0_0.jpeg").status_code == 404
