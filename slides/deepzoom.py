"""Deep-zoom tiles: rendered once with OpenSlide's DeepZoomGenerator, kept as JPEG files.

A tile request then costs a file read instead of a slide read, a resize and a JPEG encode
(bench/tiles.py measures the difference). Tiles are pre-built at ingest from the coarsest level
up, within ``TILE_PREBUILD_MAX_TILES``; the rest are rendered on first request and stored.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from openslide import OpenSlide
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image

from slides.readers import handle_cache

logger = logging.getLogger(__name__)

TILE_SIZE = 254
OVERLAP = 1
LIMIT_BOUNDS = True
FORMAT = "jpeg"


@dataclass(frozen=True)
class PrebuildReport:
    tiles: int
    seconds: float
    bytes: int


def deepzoom_geometry(handle: OpenSlide) -> dict[str, object]:
    """The grid a viewer needs, computed once at ingest and stored on the slide row."""
    dz = DeepZoomGenerator(handle, TILE_SIZE, OVERLAP, limit_bounds=LIMIT_BOUNDS)
    return {
        "tile_size": TILE_SIZE,
        "overlap": OVERLAP,
        "format": FORMAT,
        "level_dimensions": [list(d) for d in dz.level_dimensions],
        "level_tiles": [list(t) for t in dz.level_tiles],
    }


def tile_dir(slide_id: int, checksum: str) -> Path:
    """Where a slide's tiles live; the checksum and quality in the name retire stale tiles."""
    quality = settings.TILE_JPEG_QUALITY
    return settings.TILE_STORE_ROOT / str(slide_id) / f"{checksum[:16]}-q{quality}"


def tile_path(slide_id: int, checksum: str, level: int, col: int, row: int) -> Path:
    return tile_dir(slide_id, checksum) / str(level) / f"{col}_{row}.{FORMAT}"


def _generator(entry: object) -> DeepZoomGenerator:
    """One DeepZoomGenerator per cached handle (building it reads every level's geometry)."""
    extras = entry.extras  # type: ignore[attr-defined]
    dz = extras.get("deepzoom")
    if dz is None:
        dz = DeepZoomGenerator(entry.handle, TILE_SIZE, OVERLAP, limit_bounds=LIMIT_BOUNDS)  # type: ignore[attr-defined]
        extras["deepzoom"] = dz
    return dz


def render_tile(slide_path: str, level: int, col: int, row: int) -> bytes:
    """Encode one deep-zoom tile as JPEG from the slide file."""
    with handle_cache().open(slide_path) as entry:
        dz = _generator(entry)
        image = dz.get_tile(level, (col, row))
        expected = dz.get_tile_dimensions(level, (col, row))
    if image.size != expected:
        # OpenSlide's get_tile rounds the tiny levels (1-10 px) down, one pixel short of the
        # Deep Zoom grid it itself advertises; viewers then stretch them. Match the grid.
        image = image.resize(expected, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=settings.TILE_JPEG_QUALITY, optimize=False)
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a reader sees either no file or the whole tile, never half of one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stored_tile(
    slide_id: int, checksum: str, slide_path: str, level: int, col: int, row: int
) -> bytes:
    """The tile's bytes from the store, rendering and storing it on first use."""
    path = tile_path(slide_id, checksum, level, col, row)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = render_tile(slide_path, level, col, row)
    try:
        _write_atomic(path, data)
    except OSError:
        # A full or read-only disk must not break viewing; the tile is simply not kept.
        logger.warning("could not store tile %s", path, exc_info=True)
    return data


def prebuild_tiles(
    slide_id: int, checksum: str, slide_path: str, level_tiles: list[list[int]], budget: int
) -> PrebuildReport:
    """Render tiles from the coarsest level upward while the total stays within ``budget``.

    Whole levels only: a viewer zooming in never meets a half-built level, and the levels left
    out are the largest, whose tiles are the ones each viewer touches the fewest of.
    """
    started = time.perf_counter()
    count = 0
    total_bytes = 0
    for level, (cols, rows) in enumerate(level_tiles):
        if count + cols * rows > budget:
            break
        for row in range(rows):
            for col in range(cols):
                path = tile_path(slide_id, checksum, level, col, row)
                if not path.exists():
                    _write_atomic(path, render_tile(slide_path, level, col, row))
                total_bytes += path.stat().st_size
                count += 1
    return PrebuildReport(count, time.perf_counter() - started, total_bytes)
