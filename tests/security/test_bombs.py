"""Decompression bombs and images that are huge, truncated or not slides at all: refused with a
reason, nothing written, and the process keeps its memory."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import GuidelineImage
from slides.models import Slide, SlideStatus
from slides.services import slide_ingest
from tests.factories import make_project, make_user
from tests.security.conftest import BREAKS, break_bomb_filter, tree
from tests.security.hostile_images import bomb_png, flat_tiled_tiff

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

bomb = functools.cache(bomb_png)


def _media() -> set[str]:
    return tree(django_settings.MEDIA_ROOT, django_settings.TILE_STORE_ROOT)


@pytest.fixture
def manager_client(client):
    manager = make_user("boss")
    project = make_project(manager)
    client.force_login(manager)
    return client, project


def test_decompression_bomb_guideline_image_is_refused_and_not_stored(manager_client, monkeypatch):
    break_bomb_filter(monkeypatch)  # only under SECURITY_BREAK=bomb_filter
    client, project = manager_client
    data = bomb()
    assert len(data) < 100_000  # a small file...
    before = _media()
    response = client.post(
        f"/projects/{project.pk}/setup/guideline-images/",
        {"image": SimpleUploadedFile("gland.png", data, "image/png"), "caption": "x"},
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Image not added" in m and "valid image" in m for m in messages), messages
    assert not GuidelineImage.objects.exists()
    assert _media() == before


def test_ordinary_guideline_image_is_still_accepted(manager_client, shared_data):
    client, project = manager_client
    png = (shared_data / "images" / "skimage_ihc.png").read_bytes()
    response = client.post(
        f"/projects/{project.pk}/setup/guideline-images/",
        {"image": SimpleUploadedFile("ihc.png", png, "image/png"), "caption": "ihc"},
    )
    assert response.status_code == 302
    assert GuidelineImage.objects.filter(project=project).count() == 1


def _failed_with(slide: Slide, *words: str) -> None:
    slide.refresh_from_db()
    assert slide.status == SlideStatus.FAILED, (slide.status, slide.status_reason)
    for word in words:
        assert word in slide.status_reason, slide.status_reason
    assert not slide.thumbnail and not slide.tissue_mask


def _hostile_files(slides_dir: Path) -> dict[str, tuple[str, bytes, tuple[str, ...]]]:
    cmu = (slides_dir / "cmu-1-small-region.svs").read_bytes()
    return {
        "flat 100k x 100k TIFF": (
            "flat.tif",
            flat_tiled_tiff(100_000, 100_000),
            ("100000x100000", "SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS", "pyramidal"),
        ),
        "flat 20k x 20k TIFF": (
            "flat20k.tiff",
            flat_tiled_tiff(20_000, 20_000),
            ("20000x20000", "SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS"),
        ),
        "100 Mpx PNG": ("scan.png", bomb(), ("does not recognise",)),
        "truncated svs (first 64 kB)": ("cut.svs", cmu[:65536], ("",)),
        "random bytes as ndpi": ("noise.ndpi", os.urandom(200_000), ("does not recognise",)),
        "an HTML page as svs": ("page.svs", b"<html><body>hi</body></html>", ("recognise",)),
    }


CASES = [
    "flat 100k x 100k TIFF",
    "flat 20k x 20k TIFF",
    "100 Mpx PNG",
    "truncated svs (first 64 kB)",
    "random bytes as ndpi",
    "an HTML page as svs",
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_slide_uploaded_fails_ingest_with_a_reason(case, manager_client, slides_dir):
    if "thumb_guard" in BREAKS and "100k" in case:
        pytest.skip("without the guard this slide asks for 40 GB: run the 20k case instead")
    client, project = manager_client
    name, data, words = _hostile_files(slides_dir)[case]
    before = _media()
    response = client.post(
        f"/api/projects/{project.pk}/upload/", {"file": SimpleUploadedFile(name, data)}
    )
    assert response.status_code == 201, response.content
    slide = Slide.objects.get()
    returned = slide_ingest(slide_id=slide.pk)
    assert returned is not None
    _failed_with(slide, *words)
    # Only the slide's (empty) media folder may appear; no thumbnail, mask or tile.
    assert {p for p in _media() - before if not p.endswith(f"slides/{slide.pk}")} <= {
        str(django_settings.MEDIA_ROOT / "slides")
    }


@pytest.mark.parametrize("case", ["flat 100k x 100k TIFF", "100 Mpx PNG"])
def test_hostile_slide_registered_by_path_fails_ingest_with_a_reason(
    case, manager_client, slides_dir
):
    if "thumb_guard" in BREAKS and "100k" in case:
        pytest.skip("without the guard this slide asks for 40 GB")
    client, project = manager_client
    name, data, words = _hostile_files(slides_dir)[case]
    target = Path(django_settings.SLIDE_ROOTS[-1]) / "hostile" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    try:
        response = client.post(
            f"/api/projects/{project.pk}/slides/", {"path": str(target)}, "application/json"
        )
        assert response.status_code == 201, response.content
        slide = Slide.objects.get()
        slide_ingest(slide_id=slide.pk)
        _failed_with(slide, *words)
    finally:
        target.unlink()


def test_web_and_worker_processes_turn_the_bomb_warning_into_an_error(tmp_path):
    """slides/apps.py's filter, seen from a fresh process set up as gunicorn or celery are
    (pytest resets warning filters around each test, so it cannot be seen from here)."""
    import subprocess
    import sys

    path = tmp_path / "bomb.png"
    path.write_bytes(bomb())
    code = (
        "import django, io, sys; django.setup(); from PIL import Image\n"
        "try:\n    Image.open(sys.argv[1]); print('opened')\n"
        "except Image.DecompressionBombWarning:\n    print('refused')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    if "bomb_filter" in os.environ.get("SECURITY_BREAK", ""):
        env["PYTHONWARNINGS"] = "ignore::UserWarning"  # not enough to undo an explicit filter
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert done.stdout.strip() == "refused", done.stdout + done.stderr
