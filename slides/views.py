"""Deep-zoom endpoints as plain Django views: a tile request must stay cheap (bench/tiles.py).

DRF's request wrapping, negotiation and renderers cost more per request than reading a stored
tile, so the two endpoints OpenSeadragon hammers bypass it; the checks are the same.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import caches
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from slides import deepzoom
from slides.auth import request_user_id
from slides.readers import SLIDE_ERRORS
from slides.selectors import TileAccess, tile_access
from slides.services import slide_record_access

logger = logging.getLogger(__name__)


def _access_or_404(request: HttpRequest, slide_id: int) -> tuple[int, TileAccess]:
    user_id = request_user_id(request)
    access = tile_access(user_id, slide_id) if user_id is not None else None
    if access is None:
        raise Http404("No such slide.")
    return user_id, access


def _private_cache_headers(response: HttpResponse, etag: str) -> HttpResponse:
    # Immutable for a given file and quality, but private to members: browsers may keep tiles,
    # shared proxies must not.
    response["ETag"] = etag
    response["Cache-Control"] = f"private, max-age={settings.TILE_MAX_AGE_SECONDS}, immutable"
    response["Vary"] = "Cookie, Authorization"
    return response


@require_GET
def dzi(request: HttpRequest, slide_id: int) -> HttpResponse:
    """The Deep Zoom descriptor OpenSeadragon opens."""
    user_id, access = _access_or_404(request, slide_id)
    slide_record_access(user_id=user_id, slide_id=slide_id)
    width, height = access.level_dimensions[-1]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
        f'Format="{deepzoom.FORMAT}" Overlap="{access.overlap}" TileSize="{access.tile_size}">'
        f'<Size Width="{width}" Height="{height}"/></Image>'
    )
    response = HttpResponse(body, content_type="application/xml")
    response["Cache-Control"] = "private, no-cache"
    return response


@require_GET
def tile(request: HttpRequest, slide_id: int, level: int, col: int, row: int) -> HttpResponse:
    """One JPEG tile: 304 on a matching If-None-Match, else bytes from cache, store or slide."""
    user_id, access = _access_or_404(request, slide_id)
    if level >= len(access.level_tiles):
        raise Http404("No such level.")
    cols, rows = access.level_tiles[level]
    if col >= cols or row >= rows:
        raise Http404("No such tile.")
    quality = settings.TILE_JPEG_QUALITY
    etag = f'"{access.checksum[:16]}-q{quality}-{level}-{col}-{row}"'
    slide_record_access(user_id=user_id, slide_id=slide_id)
    if etag in request.headers.get("If-None-Match", ""):
        return _private_cache_headers(HttpResponse(status=304), etag)
    key = f"tile:{access.checksum[:16]}:q{quality}:{level}:{col}:{row}"
    tile_cache = caches["tiles"]
    data = tile_cache.get(key)
    if data is None:
        try:
            data = deepzoom.stored_tile(slide_id, access.checksum, access.path, level, col, row)
        except SLIDE_ERRORS:
            logger.exception("tile %s/%s/%s/%s could not be read", slide_id, level, col, row)
            return HttpResponse(
                "The slide could not be read.", status=503, content_type="text/plain"
            )
        tile_cache.set(key, data, timeout=settings.TILE_MAX_AGE_SECONDS)
    return _private_cache_headers(HttpResponse(data, content_type="image/jpeg"), etag)
