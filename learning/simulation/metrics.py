"""Scores of the simulation (pure numpy; scipy for the rank correlation)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def confusion_counts(truth: np.ndarray, said: np.ndarray, n_classes: int) -> npt.NDArray[np.int64]:
    """``(C, C)`` pixel counts ``[true][said]`` where both are rated (>= 0)."""
    ok = (truth >= 0) & (said >= 0)
    t = truth[ok].astype(np.int64)
    s = np.clip(said[ok].astype(np.int64), 0, n_classes - 1)
    return np.bincount(t * n_classes + s, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def dice_from_counts(counts: np.ndarray) -> float:
    """Foreground Dice micro-averaged over the classes 1..C-1: ``sum 2 TP_c / sum (T_c + S_c)``.

    A pixel counts as right only with the right class. Micro-averaging keeps a class with a
    handful of pixels in a round from swinging the figure (a macro mean would give one missed
    13-pixel gland the weight of all the tissue). ``nan`` when no foreground occurs at all.
    """
    counts = np.asarray(counts, dtype=np.float64)
    tp = np.trace(counts[1:, 1:])
    denom = counts[1:, :].sum() + counts[:, 1:].sum()
    return float(2.0 * tp / denom) if denom > 0 else float("nan")


def class_mean_dice(counts: np.ndarray) -> float:
    """Mean over the foreground classes 1..C-1 of each class's Dice (classes absent from both
    the truth and the answer left out): for a fixed evaluation set where every class occurs,
    so a rare class (glands) weighs as much as a common one (tissue)."""
    counts = np.asarray(counts, dtype=np.float64)
    scores = []
    for c in range(1, counts.shape[0]):
        denom = counts[c, :].sum() + counts[:, c].sum()
        if denom > 0:
            scores.append(2.0 * counts[c, c] / denom)
    return float(np.mean(scores)) if scores else float("nan")


def dice(truth: np.ndarray, said: np.ndarray, n_classes: int) -> float:
    """Mean foreground Dice of one label mask against the truth (see ``dice_from_counts``)."""
    return dice_from_counts(confusion_counts(truth, said, n_classes))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of two equally long sequences; ``nan`` below 3 pairs."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(x[keep], y[keep]).statistic)


def area_to_reach(areas: Sequence[float], scores: Sequence[float], target: float) -> float | None:
    """The labelled area at which ``scores`` first reach ``target`` (linear between points);
    None if they never do."""
    prev: tuple[float, float] | None = None
    for area, score in zip(areas, scores, strict=True):
        if not np.isfinite(score):
            continue
        if score >= target:
            if prev is None or prev[1] >= score:
                return float(area)
            a0, s0 = prev
            return float(a0 + (area - a0) * (target - s0) / (score - s0))
        prev = (float(area), float(score))
    return None


def balanced_accuracy(counts: np.ndarray) -> float:
    """``(sensitivity + specificity) / 2`` of foreground (any class > 0) against background.

    The same figure the platform estimates per annotator, here measured against the truth.
    """
    counts = np.asarray(counts, dtype=np.float64)
    fg, bg = counts[1:, :].sum(), counts[0, :].sum()
    if fg <= 0 or bg <= 0:
        return float("nan")
    return float((counts[1:, 1:].sum() / fg + counts[0, 0] / bg) / 2)
