"""Pure geometry of slide pyramids: crop planning and tile grids (no Django, no OpenSlide).

Coordinates are level-0 pixels, x right, y down. A "downsample" is level-0 pixels per output pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
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
    resized to ``out_size`` and pasted at ``out_offset`` in the output image.

    A piece that crosses the slide's edge (planned with ``bounds``) reads only ``read_box``, its
    part on the slide, into ``read_size`` pixels pasted at ``read_offset`` on a white canvas of
    ``canvas_size`` (``box`` at the level), so the resize keeps the unclipped piece's scale.
    """

    box: Box
    level: int
    read_size: tuple[int, int]
    out_offset: tuple[int, int]
    out_size: tuple[int, int]
    read_box: Box | None = None
    read_offset: tuple[int, int] = (0, 0)
    canvas_size: tuple[int, int] | None = None

    @property
    def read_location(self) -> tuple[int, int]:
        """Level-0 top-left of what is read."""
        where = self.read_box or self.box
        return where.x, where.y


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


def clip_box(box: Box, bounds: Box) -> Box | None:
    """The part of ``box`` inside ``bounds``, or None when they do not overlap."""
    x0, y0 = max(box.x, bounds.x), max(box.y, bounds.y)
    x1, y1 = min(box.x1, bounds.x1), min(box.y1, bounds.y1)
    if x0 >= x1 or y0 >= y1:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0)


def _first_true(lo: int, hi: int, test: Callable[[int], bool]) -> int:
    """The smallest ``o`` in ``[lo, hi)`` where the monotone ``test`` holds (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if test(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _on_slide(
    first: int, count: int, edge: Callable[[int], int], lo: int, hi: int
) -> tuple[int, int] | None:
    """The output pixels ``[o0, o1)`` among ``first .. first + count`` whose level-0 span
    ``[edge(o), edge(o + 1))`` meets ``[lo, hi)``, or None (``edge`` is non-decreasing)."""
    end = first + count
    o0 = _first_true(first, end, lambda o: edge(o + 1) > lo)
    o1 = _first_true(o0, end, lambda o: edge(o) >= hi)
    return (o0, o1) if o0 < o1 else None


def plan_crop(
    box: Box,
    downsample: float,
    level_downsamples: Sequence[float],
    *,
    max_read_side: int = 4096,
    bounds: Box | None = None,
) -> list[ReadPiece]:
    """Split a crop into reads no larger than ``max_read_side`` at the best pyramid level.

    A slide with a single level (CMU-1-Small-Region) must be read at level 0 even for a coarse
    crop; splitting bounds the memory of each read. Pieces tile the output exactly, so resized
    pieces leave no gaps. With ``bounds`` (the slide's level-0 extent) reads are clipped to it:
    pieces wholly off the slide are dropped, and one that crosses the edge keeps the whole
    output pixels that touch the slide but reads only its part on the slide (onto a white
    canvas of the piece's size). A box reaching far past the edge so reads no more than its part
    on the slide, and the pixels on the slide stay on the unclipped output grid.
    """
    if downsample <= 0:
        raise ValueError("downsample must be positive")
    level = best_level(level_downsamples, downsample)
    level_ds = level_downsamples[level]
    out_w, out_h = output_size(box, downsample)

    def x_at(o: int) -> int:  # level-0 x of output column o's left edge
        return box.x + round(o * box.width / out_w)

    def y_at(o: int) -> int:
        return box.y + round(o * box.height / out_h)

    def at_level(length: int) -> int:
        return max(1, math.ceil(length / level_ds))

    # Output pixels per piece such that the read at this level stays within max_read_side.
    step = max(1, int(max_read_side * level_ds / downsample))
    pieces: list[ReadPiece] = []
    for oy in range(0, out_h, step):
        for ox in range(0, out_w, step):
            # The piece's output pixels: [px, px1) x [py, py1).
            px, px1 = ox, ox + min(step, out_w - ox)
            py, py1 = oy, oy + min(step, out_h - oy)
            if bounds is not None:
                cols = _on_slide(px, px1 - px, x_at, bounds.x, bounds.x1)
                rows = _on_slide(py, py1 - py, y_at, bounds.y, bounds.y1)
                if cols is None or rows is None:
                    continue
                (px, px1), (py, py1) = cols, rows
            x0, y0 = x_at(px), y_at(py)
            x1, y1 = max(x0 + 1, x_at(px1)), max(y0 + 1, y_at(py1))
            piece_box = Box(x0, y0, x1 - x0, y1 - y0)
            canvas = (at_level(piece_box.width), at_level(piece_box.height))
            out = ((px, py), (px1 - px, py1 - py))
            inner = clip_box(piece_box, bounds) if bounds is not None else piece_box
            if inner is None:
                continue
            if inner == piece_box:
                pieces.append(ReadPiece(piece_box, level, canvas, *out))
                continue
            pieces.append(
                ReadPiece(
                    piece_box,
                    level,
                    (at_level(inner.width), at_level(inner.height)),
                    *out,
                    read_box=inner,
                    read_offset=(
                        int((inner.x - piece_box.x) / level_ds),
                        int((inner.y - piece_box.y) / level_ds),
                    ),
                    canvas_size=canvas,
                )
            )
    return pieces


def source_pixels(pieces: Sequence[ReadPiece]) -> int:
    """Pixels the reader is asked for, summed over the pieces (``read_size``, at their level)."""
    return sum(piece.read_size[0] * piece.read_size[1] for piece in pieces)


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
