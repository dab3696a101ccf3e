"""Pure geometry of slide pyramids: crop planning and tile grids (no Django, no OpenSlide).

Coordinates are level-0 pixels, x right, y down. A "downsample" is level-0 pixels per output pixel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle ``[x, x + width) x [y, y + height)`` in level-0 pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def x1(self) -> int:
        return self.x + self.width

    @property
    def y1(self) -> int:
        return self.y + self.height

    def intersects(self, other: Box) -> bool:
        return self.x < other.x1 and other.x < self.x1 and self.y < other.y1 and other.y < self.y1


@dataclass(frozen=True)
class ReadPiece:
    """One bounded read: ``box`` at level 0, read at ``level`` into ``read_size`` pixels, then
    resized to ``out_size`` and pasted at ``out_offset`` in the output image."""

    box: Box
    level: int
    read_size: tuple[int, int]
    out_offset: tuple[int, int]
    out_size: tuple[int, int]


def downsample_for_mpp(slide_mpp: float, target_mpp: float) -> float:
    """Level-0 pixels per output pixel to render a slide of ``slide_mpp`` at ``target_mpp``."""
    if not (slide_mpp > 0 and target_mpp > 0) or math.isinf(slide_mpp) or math.isinf(target_mpp):
        raise ValueError("mpp values must be positive and finite")
    return target_mpp / slide_mpp


def best_level(level_downsamples: Sequence[float], downsample: float) -> int:
    """The coarsest level whose downsample does not exceed ``downsample`` (OpenSlide's rule)."""
    best = 0
    for index, level_ds in enumerate(level_downsamples):
        if level_ds <= downsample * (1 + 1e-6):
            best = index
    return best


def output_size(box: Box, downsample: float) -> tuple[int, int]:
    """Size in pixels of ``box`` rendered at ``downsample`` (at least 1 x 1)."""
    return (
        max(1, round(box.width / downsample)),
        max(1, round(box.height / downsample)),
    )


def plan_crop(
    box: Box,
    downsample: float,
    level_downsamples: Sequence[float],
    *,
    max_read_side: int = 4096,
) -> list[ReadPiece]:
    """Split a crop into reads no larger than ``max_read_side`` at the best pyramid level.

    A slide with a single level (CMU-1-Small-Region) must be read at level 0 even for a coarse
    crop; splitting bounds the memory of each read. Pieces tile the output exactly, so resized
    pieces leave no gaps.
    """
    if downsample <= 0:
        raise ValueError("downsample must be positive")
    level = best_level(level_downsamples, downsample)
    level_ds = level_downsamples[level]
    out_w, out_h = output_size(box, downsample)
    # Output pixels per piece such that the read at this level stays within max_read_side.
    step = max(1, int(max_read_side * level_ds / downsample))
    pieces: list[ReadPiece] = []
    for oy in range(0, out_h, step):
        for ox in range(0, out_w, step):
            ow, oh = min(step, out_w - ox), min(step, out_h - oy)
            x0 = box.x + round(ox * box.width / out_w)
            y0 = box.y + round(oy * box.height / out_h)
            x1 = box.x + round((ox + ow) * box.width / out_w)
            y1 = box.y + round((oy + oh) * box.height / out_h)
            piece_box = Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))
            read_size = (
                max(1, math.ceil(piece_box.width / level_ds)),
                max(1, math.ceil(piece_box.height / level_ds)),
            )
            pieces.append(ReadPiece(piece_box, level, read_size, (ox, oy), (ow, oh)))
    return pieces


def grid_boxes(
    bounds: Box, tile: int, stride: int | None = None, *, keep_partial: bool = False
) -> Iterator[Box]:
    """Square tiles of side ``tile`` (level 0) over ``bounds``, every ``stride`` pixels.

    Partial tiles at the right and bottom edges are dropped unless ``keep_partial``.
    """
    if tile <= 0:
        raise ValueError("tile must be positive")
    step = stride or tile
    if step <= 0:
        raise ValueError("stride must be positive")
    for y in range(bounds.y, bounds.y1, step):
        for x in range(bounds.x, bounds.x1, step):
            w, h = min(tile, bounds.x1 - x), min(tile, bounds.y1 - y)
            if (w == tile and h == tile) or keep_partial:
                yield Box(x, y, w, h)


def deepzoom_tile_count(level_tiles: Sequence[Sequence[int]]) -> int:
    """Total number of tiles in a deep-zoom pyramid given (columns, rows) per level."""
    return sum(int(cols) * int(rows) for cols, rows in level_tiles)
