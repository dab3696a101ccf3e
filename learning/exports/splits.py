"""Seeded train / validation / test splits by group (slide or case), and patch grids (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SPLITS", "assign_splits", "patch_origins"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


def assign_splits(groups: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """Map each distinct group to one split, so no group falls in two.

    Groups are sorted, shuffled by a ``numpy`` generator seeded with ``seed``, and cut by the
    cumulative ``fractions`` (train, val, test; they must sum to 1). Counts are rounded so that
    they add up to the number of groups; train gets the first group whenever there is one.
    """
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be three non-negative numbers, got {list(fractions)}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {sum(fractions)}")
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    n = len(unique)
    cuts = np.round(np.cumsum(fractions) * n).astype(int)
    cuts[-1] = n
    if n and cuts[0] == 0:
        cuts[0] = 1
    cuts = np.maximum.accumulate(cuts)
    found: dict[str, str] = {}
    for position, index in enumerate(order):
        split = SPLITS[int(np.searchsorted(cuts, position, side="right"))]
        found[unique[int(index)]] = split
    return found


def patch_origins(length: int, patch: int, stride: int) -> list[int]:
    """Top (or left) offsets of patches along one axis of ``length`` pixels.

    Every ``stride`` pixels while a whole patch fits, plus one patch flush with the far edge
    when the stride leaves a strip uncovered; one patch at 0 (padded) when the axis is shorter
    than a patch.
    """
    if patch <= 0 or stride <= 0:
        raise ValueError(f"patch and stride must be positive, got {patch}, {stride}")
    if length <= patch:
        return [0]
    origins = list(range(0, length - patch + 1, stride))
    if origins[-1] != length - patch:
        origins.append(length - patch)
    return origins
