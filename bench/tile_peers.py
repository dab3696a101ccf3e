"""Comparison endpoints for bench/tiles.py, behind the same authentication and membership check.

(F) the floor: one fixed in-memory JPEG, after the same checks as the project's tile view.
(F0) the same fixed JPEG with no checks at all: F0 - F is what the checks cost.
(O) the obvious implementation, as openslide-python's example deep-zoom server does it:
    DeepZoomGenerator(slide, 254, 1, limit_bounds=True).get_tile, Pillow JPEG quality 75, no
    cache (the slide handle and generator are opened once per process, as the example does).
"""

from __future__ import annotations

import io
import threading

import openslide
from django.http import HttpRequest, HttpResponse
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image

from slides.views import _access_or_404

_FIXED = io.BytesIO()
Image.new("RGB", (256, 256), (230, 200, 220)).save(_FIXED, "JPEG", quality=75)
FIXED_TILE = _FIXED.getvalue()

_generators: dict[str, DeepZoomGenerator] = {}
_lock = threading.Lock()


def fixed_tile(request: HttpRequest, slide_id: int, level: int, col: int, row: int) -> HttpResponse:
    _access_or_404(request, slide_id)
    return HttpResponse(FIXED_TILE, content_type="image/jpeg")


def fixed_tile_anonymous(
    request: HttpRequest, slide_id: int, level: int, col: int, row: int
) -> HttpResponse:
    return HttpResponse(FIXED_TILE, content_type="image/jpeg")


def openslide_tile(
    request: HttpRequest, slide_id: int, level: int, col: int, row: int
) -> HttpResponse:
    _, access = _access_or_404(request, slide_id)
    with _lock:
        dz = _generators.get(access.path)
        if dz is None:
            dz = DeepZoomGenerator(openslide.OpenSlide(access.path), 254, 1, limit_bounds=True)
            _generators[access.path] = dz
    tile = dz.get_tile(level, (col, row))
    buffer = io.BytesIO()
    tile.save(buffer, "jpeg", quality=75)
    return HttpResponse(buffer.getvalue(), content_type="image/jpeg")
