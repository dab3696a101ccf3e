"""Placing regions on tissue (pure numpy): non-overlapping squares, never on background."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[int, int, int, int]


def tissue_boxes(
    mask: np.ndarray,
    scale: float,
    box_side: int,
    n: int,
    existing: Sequence[Box],
    rng: np.random.Generator,
    *,
    min_tissue: float = 0.6,
    slide_size: tuple[int, int] | None = None,
    stride_fraction: float = 0.25,
) -> list[Box]:
    """Pick up to ``n`` level-0 squares of ``box_side`` px on tissue, overlapping nothing.

    ``mask`` is the tissue mask (bool, shape (h, w)) on a thumbnail whose pixels are ``scale``
    level-0 pixels wide. Candidates lie on a grid with a stride of ``stride_fraction`` of a side
    (finer than the side, so irregular tissue still fits squares); those with a tissue share
    below ``min_tissue`` or overlapping ``existing`` boxes are dropped. Candidates are visited in
    an order drawn from ``rng`` and kept when they overlap no box kept before. Boxes are
    (x0, y0, x1, y1) in level-0 pixels, returned sorted.
    """
    if box_side <= 0 or scale <= 0:
        raise ValueError("box_side and scale must be positive")
    height, width = mask.shape
    full_w, full_h = slide_size or (int(width * scale), int(height * scale))
    stride = max(1, int(box_side * stride_fraction))
    # Tissue share of every candidate window from an integral image: O(1) per candidate.
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    candidates: list[Box] = []
    for y0 in range(0, full_h - box_side + 1, stride):
        for x0 in range(0, full_w - box_side + 1, stride):
            tx0, ty0 = int(x0 / scale), int(y0 / scale)
            tx1 = min(width, max(tx0 + 1, int(np.ceil((x0 + box_side) / scale))))
            ty1 = min(height, max(ty0 + 1, int(np.ceil((y0 + box_side) / scale))))
            area = (tx1 - tx0) * (ty1 - ty0)
            inside = (
                integral[ty1, tx1] - integral[ty0, tx1] - integral[ty1, tx0] + integral[ty0, tx0]
            )
            if area and inside / area >= min_tissue:
                candidates.append((x0, y0, x0 + box_side, y0 + box_side))
    kept: list[Box] = []
    blocked = list(existing)
    for index in rng.permutation(len(candidates)):
        if len(kept) == n:
            break
        box = candidates[index]
        if not any(_overlap(box, other) for other in blocked):
            kept.append(box)
            blocked.append(box)
    return sorted(kept)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
