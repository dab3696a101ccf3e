"""Inter-rater agreement: Dice/IoU, Fleiss' kappa, Krippendorff's alpha, boundary F1 (pure numpy).

Masks follow :mod:`annotation.vote_patterns`: ``(R, *S)`` integer class ids, negative values
(``NOT_RATED``) where a rater did not rate a pixel. Overlaps are computed from the distinct
vote patterns and their counts, so they cost one pass over the pixels whatever R is.

Empty cases are defined, never NaN where a value is meaningful:

- Dice and IoU: two raters who both mark no pixel of a class agree fully: 1.0. One marks
  some, the other none: 0.0. Only pixels rated by both raters are compared; with no such
  pixel, neither marks anything, so again 1.0.
- Rater against consensus: same rules; pixels whose consensus is unrated or undecided (a label
  outside ``0 .. C-1``) are left out.
- Boundary F1: neither mask has a boundary: 1.0 if they are equal (both empty, or both
  full), else 0.0; exactly one without boundary: 0.0. The image edge is not a boundary.
- Fleiss' kappa and Krippendorff's alpha: when only one category is ever used the expected
  disagreement is zero and the raters agree perfectly: 1.0 (the textbook formula is 0/0).
  With no item rated by at least two raters there is nothing to compare: NaN, the one case
  where agreement is undefined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from annotation.vote_patterns import FloatArray, check_masks, compress

__all__ = [
    "PairwiseOverlap",
    "RaterOverlap",
    "boundary_f1",
    "fleiss_kappa",
    "krippendorff_alpha_nominal",
    "mean_pairwise",
    "pairwise_overlap",
    "rater_vs_consensus",
]


@dataclass(frozen=True)
class PairwiseOverlap:
    """Per-class overlap of every pair of raters.

    Attributes:
        dice: ``(C, R, R)`` float64, Dice of raters a and b on class c (symmetric, diagonal 1).
        iou: ``(C, R, R)`` float64, intersection over union, same layout.
        union: ``(C, R, R)`` int64, pixels of class c marked by a or b among pixels both rated:
            how much each figure rests on (0 means "both empty", scored 1.0).
    """

    dice: FloatArray
    iou: FloatArray
    union: npt.NDArray[np.int64]


@dataclass(frozen=True)
class RaterOverlap:
    """Each rater against a reference (e.g. the consensus).

    Attributes:
        dice: ``(R, C)`` float64 Dice of rater r with the reference on class c.
        iou: ``(R, C)`` float64 IoU, same layout.
    """

    dice: FloatArray
    iou: FloatArray


def _overlap_from_counts(
    intersection: FloatArray, size_a: FloatArray, size_b: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    union = size_a + size_b - intersection
    total = size_a + size_b
    # Both empty (total 0) is full agreement by definition (module docstring).
    dice = np.where(total > 0, 2.0 * intersection / np.where(total > 0, total, 1.0), 1.0)
    iou = np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 1.0)
    return dice, iou, union


def pairwise_overlap(masks: np.ndarray, n_classes: int | None = None) -> PairwiseOverlap:
    """Dice and IoU per class for every pair of raters, over pixels both rated.

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        n_classes: C; default 1 + the largest class id present.
    """
    patterns = compress(masks, n_classes)
    onehot = patterns.onehot * patterns.counts[:, None, None]  # (P, R, C) weighted
    rated = patterns.rated.astype(np.float64)  # (P, R)
    plain = patterns.onehot
    # intersection[c, a, b]: pixels both a and b gave class c; size[c, a, b]: pixels a gave
    # class c among those b rated too.
    intersection = np.einsum("pac,pbc->cab", onehot, plain, optimize=True)
    size = np.einsum("pac,pb->cab", onehot, rated, optimize=True)
    dice, iou, union = _overlap_from_counts(intersection, size, size.transpose(0, 2, 1))
    return PairwiseOverlap(dice=dice, iou=iou, union=np.rint(union).astype(np.int64))


def mean_pairwise(values: FloatArray) -> FloatArray:
    """Mean over distinct rater pairs (a < b) of a ``(C, R, R)`` figure; ``(C,)``.

    With a single rater there is no pair: the result is 1.0 (nobody disagrees).
    """
    n_raters = values.shape[1]
    if n_raters < 2:
        return np.ones(values.shape[0])
    upper = np.triu_indices(n_raters, k=1)
    return values[:, upper[0], upper[1]].mean(axis=1)


def rater_vs_consensus(
    masks: np.ndarray, consensus: np.ndarray, n_classes: int | None = None
) -> RaterOverlap:
    """Dice and IoU of each rater against a consensus label map.

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        consensus: ``S`` consensus labels; values outside ``0 .. C-1`` (unrated, undecided)
            leave the pixel out.
        n_classes: C; default 1 + the largest class id in ``masks``.
    """
    masks, n_classes = check_masks(masks, n_classes)
    consensus = np.asarray(consensus)
    if consensus.shape != masks.shape[1:]:
        raise ValueError(f"consensus shape {consensus.shape} != mask shape {masks.shape[1:]}")
    reference = np.where((consensus >= 0) & (consensus < n_classes), consensus, -1)
    stacked = np.concatenate([masks.astype(np.int16), reference[None].astype(np.int16)])
    overlap = pairwise_overlap(stacked, n_classes)
    n_raters = masks.shape[0]
    return RaterOverlap(
        dice=overlap.dice[:, :n_raters, n_raters].T.copy(),
        iou=overlap.iou[:, :n_raters, n_raters].T.copy(),
    )


def _category_counts(labels: np.ndarray, n_classes: int | None) -> npt.NDArray[np.int64]:
    """``(N, C)`` number of raters who gave item n category c, from ``(R, N)`` labels."""
    labels, n_classes = check_masks(labels, n_classes)
    flat = labels.reshape(labels.shape[0], -1)
    n_items = flat.shape[1]
    counts = np.zeros(n_items * n_classes, dtype=np.int64)
    for rater_labels in flat:
        ok = rater_labels >= 0
        index = np.flatnonzero(ok) * n_classes + rater_labels[ok]
        counts += np.bincount(index, minlength=n_items * n_classes)
    return counts.reshape(n_items, n_classes)


def fleiss_kappa(labels: np.ndarray, n_classes: int | None = None) -> float:
    """Fleiss' kappa for categorical labels, e.g. one class per rater per region.

    Items may have different numbers of ratings (NOT_RATED for missing): each item's observed
    agreement uses its own n_i (pairs of its ratings that agree), items with fewer than two
    ratings are dropped, and category shares pool all ratings. With the same n for every
    item this is Fleiss (1971) exactly.

    Args:
        labels: ``(R, N)`` (or ``(R, *S)``) integer categories, negative = not rated.
        n_classes: number of categories; default 1 + the largest present.

    Returns:
        kappa; 1.0 when a single category is used throughout; NaN when no item has two
        ratings (module docstring).
    """
    counts = _category_counts(labels, n_classes)
    n_item = counts.sum(axis=1)
    keep = n_item >= 2
    if not keep.any():
        return float("nan")
    counts = counts[keep].astype(np.float64)
    n_item = n_item[keep].astype(np.float64)
    agreement = ((counts * (counts - 1)).sum(axis=1) / (n_item * (n_item - 1))).mean()
    shares = counts.sum(axis=0) / counts.sum()
    chance = float((shares**2).sum())
    if chance >= 1.0:
        return 1.0
    return float((agreement - chance) / (1.0 - chance))


def krippendorff_alpha_nominal(labels: np.ndarray, n_classes: int | None = None) -> float:
    """Krippendorff's alpha for nominal data (Krippendorff 2011, "Computing ... alpha").

    Builds the coincidence matrix o[c, k] = sum over units u of n_uc (n_uk - [c == k]) /
    (m_u - 1) over units with m_u >= 2 ratings, then alpha = 1 - (n - 1) * sum_{c != k} o[c, k]
    / sum_{c != k} n_c n_k.

    Args:
        labels: ``(R, N)`` integer categories (units in columns), negative = not rated.
        n_classes: number of categories; default 1 + the largest present.

    Returns:
        alpha; 1.0 when a single category is used throughout; NaN when no unit has two
        ratings (module docstring).
    """
    counts = _category_counts(labels, n_classes).astype(np.float64)
    pairable = counts.sum(axis=1)
    keep = pairable >= 2
    if not keep.any():
        return float("nan")
    counts = counts[keep]
    pairable = pairable[keep]
    coincidence = np.einsum("uc,uk->ck", counts / (pairable - 1)[:, None], counts)
    coincidence -= np.diag((counts / (pairable - 1)[:, None]).sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n_total = n_c.sum()
    observed = coincidence.sum() - np.trace(coincidence)
    expected = n_total**2 - (n_c**2).sum()
    if expected <= 0:
        return 1.0
    return float(1.0 - (n_total - 1.0) * observed / expected)


def _boundary(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Foreground pixels with a 4-neighbour in the background.

    The image edge is not a boundary (edge pixels are compared with themselves): a region cut
    out of a slide ends there, the object does not.
    """
    padded = np.pad(mask, 1, mode="edge")
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    return mask & ~interior


def _dilate_disk(mask: npt.NDArray[np.bool_], radius: float) -> npt.NDArray[np.bool_]:
    """Pixels within Euclidean distance ``radius`` (pixels) of a True pixel of ``mask``.

    Row by row of the disk: each offset dy dilates along x by the half-width
    floor(sqrt(r^2 - dy^2)) with a running sum, so the cost is O((2r + 1) * H * W).
    """
    reach = int(np.floor(radius + 1e-9))
    if reach <= 0:
        return mask.copy()
    height, width = mask.shape
    csum = np.zeros((height, width + 1), dtype=np.int64)
    np.cumsum(mask, axis=1, out=csum[:, 1:])
    out = np.zeros_like(mask)
    cols = np.arange(width)
    for dy in range(-reach, reach + 1):
        half = int(np.floor(np.sqrt(max(radius * radius - dy * dy, 0.0)) + 1e-9))
        lo = np.clip(cols - half, 0, width)
        hi = np.clip(cols + half + 1, 0, width)
        row_hit = (csum[:, hi] - csum[:, lo]) > 0  # any True within [x - half, x + half]
        if dy >= 0:
            out[: height - dy] |= row_hit[dy:]
        else:
            out[-dy:] |= row_hit[: height + dy]
    return out


def boundary_f1(mask_a: np.ndarray, mask_b: np.ndarray, tolerance: float = 2.0) -> float:
    """Boundary F1 (BF score, Csurka et al. 2013) of two binary ``(H, W)`` masks.

    Precision is the share of a's boundary pixels within ``tolerance`` pixels (Euclidean) of
    b's boundary, recall the share of b's within ``tolerance`` of a's; F1 is their harmonic
    mean. For a class of a label map pass ``labels == c``.

    Args:
        mask_a: ``(H, W)`` bool (or 0/1) mask.
        mask_b: ``(H, W)`` bool mask of the same shape.
        tolerance: distance in pixels at which boundary pixels still match (>= 0).

    Returns:
        F1 in [0, 1]; with no boundary on one side, 1.0 if the masks are equal, else 0.0.
    """
    a = np.asarray(mask_a).astype(bool, copy=False)
    b = np.asarray(mask_b).astype(bool, copy=False)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"masks must be 2-D and equal in shape, got {a.shape} and {b.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    edge_a = _boundary(a)
    edge_b = _boundary(b)
    n_a = int(edge_a.sum())
    n_b = int(edge_b.sum())
    if n_a == 0 or n_b == 0:
        # Without an outline on one side there is nothing to match: agreement is whether the
        # masks are the same (both empty or both full), never 0/0.
        return 1.0 if n_a == n_b and np.array_equal(a, b) else 0.0
    precision = (edge_a & _dilate_disk(edge_b, tolerance)).sum() / n_a
    recall = (edge_b & _dilate_disk(edge_a, tolerance)).sum() / n_b
    if precision + recall == 0:
        return 0.0
    return float(2.0 * precision * recall / (precision + recall))
