"""Slide- and region-level map images from per-tile model maps (pure numpy and Pillow).

A model version stores, per candidate tile, two small ``(m, m)`` uint8 maps covering the tile's
level-0 box: the predicted class index and the pixel entropy scaled to 0..255 of log(K). This
module lays those maps onto one canvas covering a level-0 box (a whole slide at thumbnail scale,
or one region), then colours them as RGBA: prediction by class colour, uncertainty by a
viridis-like ramp, transparent where no tile was scored.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

PREDICTION_ALPHA = 150  # of 255: the tissue stays readable under the colours
UNCERTAINTY_ALPHA = (24, 210)  # of 255, from certain to uncertain

# Five stops of matplotlib's viridis (dark violet -> teal -> yellow), evenly spaced on 0..255.
VIRIDIS_STOPS: tuple[tuple[int, int, int], ...] = (
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
)


@dataclass(frozen=True)
class TileMap:
    """One tile's map: ``values`` is ``(m_h, m_w)`` uint8 spread evenly over the level-0 box
    ``(x, y)`` .. ``(x + width, y + height)``."""

    x: int
    y: int
    width: int
    height: int
    values: np.ndarray


def fit_canvas(
    x0: float, y0: float, width: float, height: float, max_side: int
) -> tuple[tuple[int, int], tuple[float, float, float, float]]:
    """Canvas ``(w, h)`` for a level-0 box, and the box it covers exactly.

    The canvas spans the box's full width (so a viewer can lay it at the box's x and width);
    its height is rounded up to whole pixels, so the covered box reaches at most one canvas
    pixel below the given one (left clear). The longer side is about ``max_side``.
    """
    if width <= 0 or height <= 0:
        raise ValueError("the box must have a positive width and height")
    w = max(1, round(max_side * width / max(width, height)))
    h = max(1, math.ceil(height * w / width - 1e-9))
    return (w, h), (x0, y0, x0 + width, y0 + h * width / w)


def natural_side(box_side: float, tiles: Sequence[TileMap], cap: int) -> int:
    """Canvas side that gives about one canvas pixel per map cell across ``box_side`` level-0
    pixels (the finest tile's cell size), at most ``cap`` and at least 1."""
    if not tiles:
        return max(1, min(cap, 256))
    cell = min(t.width / t.values.shape[1] for t in tiles)
    return max(1, min(cap, math.ceil(box_side / cell)))


def compose(
    tiles: Sequence[TileMap], box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Sample the tiles' maps at the centre of every canvas pixel (nearest cell).

    ``box`` is ``(x0, y0, x1, y1)`` in level-0 pixels, ``size`` the canvas ``(w, h)``. Returns
    ``values`` ``(h, w)`` uint8 and ``covered`` ``(h, w)`` bool (False where no tile lies). A
    tile later in ``tiles`` wins where two overlap.
    """
    x0, y0, x1, y1 = box
    out_w, out_h = size
    values = np.zeros((out_h, out_w), dtype=np.uint8)
    covered = np.zeros((out_h, out_w), dtype=bool)
    cx = x0 + (np.arange(out_w) + 0.5) * ((x1 - x0) / out_w)
    cy = y0 + (np.arange(out_h) + 0.5) * ((y1 - y0) / out_h)
    for tile in tiles:
        grid = np.asarray(tile.values, dtype=np.uint8)
        m_h, m_w = grid.shape
        # Pixel centres are sorted: the tile's pixels are one slice per axis.
        c0, c1 = np.searchsorted(cx, [tile.x, tile.x + tile.width], side="left")
        r0, r1 = np.searchsorted(cy, [tile.y, tile.y + tile.height], side="left")
        if c0 >= c1 or r0 >= r1:
            continue
        ci = np.clip(np.floor((cx[c0:c1] - tile.x) * m_w / tile.width).astype(int), 0, m_w - 1)
        ri = np.clip(np.floor((cy[r0:r1] - tile.y) * m_h / tile.height).astype(int), 0, m_h - 1)
        values[r0:r1, c0:c1] = grid[np.ix_(ri, ci)]
        covered[r0:r1, c0:c1] = True
    return values, covered


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``"#e6194b"`` (or ``"e6194b"``, or ``"#e14"``) -> ``(230, 25, 75)``."""
    text = color.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    if len(text) != 6:
        raise ValueError(f"not a hex colour: {color!r}")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def prediction_rgba(
    values: np.ndarray,
    covered: np.ndarray,
    colors: Sequence[tuple[int, int, int] | None],
    alpha: int = PREDICTION_ALPHA,
) -> np.ndarray:
    """``(h, w, 4)`` uint8: class ``i`` painted ``colors[i]`` at ``alpha``; a class without a
    colour (index 0, background), an index past ``colors`` and uncovered pixels are clear."""
    lut = np.zeros((256, 4), dtype=np.uint8)
    for index, color in enumerate(colors[:256]):
        if color is not None:
            lut[index] = (*color, alpha)
    rgba = lut[values]
    rgba[~covered] = 0
    return rgba


def ramp_lut(stops: Sequence[tuple[int, int, int]] = VIRIDIS_STOPS) -> np.ndarray:
    """``(256, 3)`` uint8: the stops spread evenly over 0..255, linear in between, rounded."""
    at = np.linspace(0.0, 255.0, len(stops))
    levels = np.arange(256, dtype=float)
    channels = [np.interp(levels, at, [s[c] for s in stops]) for c in range(3)]
    return np.rint(np.stack(channels, axis=1)).astype(np.uint8)


def uncertainty_rgba(
    values: np.ndarray,
    covered: np.ndarray,
    alpha: tuple[int, int] = UNCERTAINTY_ALPHA,
) -> np.ndarray:
    """``(h, w, 4)`` uint8: scaled entropy (0 certain .. 255 uniform) on the viridis-like ramp,
    its opacity rising with it from ``alpha[0]`` to ``alpha[1]`` (certain tissue stays
    readable under a faint tint); clear where no tile was scored."""
    low, high = alpha
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = ramp_lut()[values]
    opacity = np.rint(low + (high - low) * values.astype(float) / 255.0).astype(np.uint8)
    rgba[..., 3] = np.where(covered, opacity, 0)
    rgba[~covered, :3] = 0
    return rgba


def png_bytes(rgba: np.ndarray) -> bytes:
    """PNG encoding of an ``(h, w, 4)`` uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
