"""Tile caching headers, crops at a level or mpp, and the crop cap."""

from __future__ import annotations

import io

import numpy as np
import openslide
import pytest
from PIL import Image

from tests.factories import ingested_slide, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def cmu(slides_dir, client):
    manager = make_user()
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", make_project(manager))
    client.force_login(manager)
    return slide


@pytest.mark.smoke
def test_tile_has_private_immutable_caching_and_answers_304(cmu, client):
    url = f"/dz/{cmu.pk}_files/11/1_1.jpeg"
    first = client.get(url)
    assert first.status_code == 200
    assert first["Cache-Control"].startswith("private")
    assert "max-age=" in first["Cache-Control"]
    etag = first["ETag"]
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    other = client.get(f"/dz/{cmu.pk}_files/11/0_0.jpeg", HTTP_IF_NONE_MATCH=etag)
    assert other.status_code == 200 and other["ETag"] != etag


def test_level0_crop_equals_openslide_pixels(cmu, client, slides_dir):
    response = client.get(f"/api/slides/{cmu.pk}/crop/?x=500&y=700&width=64&height=48")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    served = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    with openslide.OpenSlide(str(slides_dir / "cmu-1-small-region.svs")) as handle:
        expected = np.asarray(handle.read_region((500, 700), 0, (64, 48)).convert("RGB"))
    assert served.shape == (48, 64, 3)
    assert np.array_equal(served, expected)


def test_crop_at_target_mpp_has_the_scaled_size(cmu, client):
    # CMU-1-Small-Region is 0.499 um/px; at 1.996 um/px a 400x200 rectangle is 100x50.
    response = client.get(
        f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=400&height=200&mpp=1.996&format=jpeg"
    )
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (100, 50)


def test_whole_slide_crop_resembles_thumbnail(cmu, client):
    response = client.get(f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=2220&height=2967&mpp=7.985")
    crop = np.asarray(Image.open(io.BytesIO(response.content)).convert("L"), dtype=float)
    thumb = Image.open(cmu.thumbnail).convert("L").resize(crop.shape[::-1])
    corr = np.corrcoef(crop.ravel(), np.asarray(thumb, dtype=float).ravel())[0, 1]
    assert corr > 0.95


@pytest.mark.parametrize(
    "query",
    [
        "x=0&y=0&width=2220&height=2967",  # 6.6 Mpx at level 0 over a 4096-px side cap? no: area
        "x=0&y=0&width=100&height=100&level=5",  # no such level
        "x=2200&y=0&width=100&height=100",  # leaves the slide
        "x=-1&y=0&width=10&height=10",
        "x=0&y=0&width=0&height=10",
        "x=0&y=0&width=10&height=10&mpp=NaN",
        "x=0&y=0&width=10&height=10&mpp=0.5&level=0",
        "x=0&y=0&width=10&height=10&format=gif",
        "x=a&y=0&width=10&height=10",
    ],
)
def test_bad_or_oversized_crop_is_400(cmu, client, settings, query):
    settings.CROP_MAX_PIXELS = 2000 * 2000
    response = client.get(f"/api/slides/{cmu.pk}/crop/?{query}")
    assert response.status_code == 400, response.content


def test_crop_over_the_cap_names_the_cap(cmu, client, settings):
    settings.CROP_MAX_PIXELS = 1000 * 1000
    response = client.get(f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=1001&height=1000")
    assert response.status_code == 400
    assert "cap" in response.json()["detail"]
    ok = client.get(f"/api/slides/{cmu.pk}/crop/?x=0&y=0&width=1000&height=1000")
    assert ok.status_code == 200
