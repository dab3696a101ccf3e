"""One region's merge: consensus, vote shares, agreement, contested pixels, status (pure numpy).

The platform's merge service rasterises submissions into ``(R, H, W)`` int16 masks (compact
class indices, 0 = background, ``NOT_RATED`` = -1) and hands them here with the annotators'
prior reliability; this module decides nothing about storage.

Figures:

- vote share: per pixel, the share of the raters who rated it that chose each class;
  the majority share is the largest. A rated pixel is *contested* when its majority share is
  below ``contested_share`` (or the method left it undecided).
- ``contested_fraction``: contested pixels over all H x W pixels of the region.
- ``dice``: mean pairwise Dice (over rater pairs, among raters who rated anything) averaged
  over the foreground classes some rater marked; 1.0 when nobody marked any foreground.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from annotation import agreement
from annotation.consensus import ConsensusResult, majority_vote, run_consensus
from annotation.vote_patterns import NOT_RATED

__all__ = ["Prior", "RegionMerge", "Thresholds", "escalation_status", "merge_masks"]

ACCEPTED: Final = "accepted"
NEEDS_MORE: Final = "needs_more"
NEEDS_ADJUDICATION: Final = "needs_adjudication"

# Carried rates are kept off 0 and 1: a rate of exactly 1 makes any disagreeing vote impossible
# and EM can never move away from it.
_RATE_FLOOR: Final = 0.01
_DEFAULT_RATE: Final = 0.9


@dataclass(frozen=True)
class Prior:
    """An annotator's carried reliability: binary rates and/or a ``(C, C)`` [true, said] matrix."""

    sensitivity: float | None = None
    specificity: float | None = None
    confusion: Sequence[Sequence[float]] | None = None


@dataclass(frozen=True)
class Thresholds:
    """A project's escalation settings (defaults as on the Project model)."""

    contested_share: float = 0.8
    accept_dice: float = 0.8
    max_contested_fraction: float = 0.05
    escalate_dice: float = 0.5
    k: int = 3
    k_max: int = 5


@dataclass(frozen=True)
class RegionMerge:
    """Result of :func:`merge_masks`.

    Attributes:
        labels: ``(H, W)`` int16 consensus (-1 nobody rated; C = undecided, multi-class STAPLE).
        posterior: ``(C, H, W)`` float32 probability of each class.
        vote_share: ``(C, H, W)`` float32 share of votes for each class.
        contested: ``(H, W)`` bool.
        method: the registry method that ran (``staple`` becomes ``staple_multiclass`` for C > 2).
        class_dice: ``(C,)`` mean pairwise Dice per class.
        dice: region Dice (module docstring).
        fleiss_kappa: over pixels; None when undefined.
        raters: per rater: ``rated`` (bool), ``dice`` against the consensus (foreground classes
            mean), ``sensitivity``/``specificity`` (binary view: foreground = any class > 0),
            ``confusion`` ``(C, C)`` rows and ``counts`` (expected pixels [true][said]).
    """

    labels: npt.NDArray[np.int16]
    posterior: npt.NDArray[np.float32]
    vote_share: npt.NDArray[np.float32]
    contested: npt.NDArray[np.bool_]
    method: str
    class_dice: npt.NDArray[np.float64]
    dice: float
    fleiss_kappa: float | None
    raters: list[dict[str, Any]]
    iterations: int
    converged: bool

    @property
    def contested_fraction(self) -> float:
        return float(self.contested.sum()) / max(1, self.contested.size)

    @property
    def n_rated(self) -> int:
        return sum(1 for r in self.raters if r["rated"])


def _clip(value: float) -> float:
    return float(min(1.0 - _RATE_FLOOR, max(_RATE_FLOOR, value)))


def _binary_start(priors: Sequence[Prior | None]) -> dict[str, Any]:
    known = [
        p
        for p in priors
        if p is not None and p.sensitivity is not None and p.specificity is not None
    ]
    if not known:
        return {}
    sens = [_clip(p.sensitivity) if p in known else _DEFAULT_RATE for p in priors]  # type: ignore[arg-type]
    spec = [_clip(p.specificity) if p in known else _DEFAULT_RATE for p in priors]  # type: ignore[arg-type]
    return {"sensitivity": sens, "specificity": spec}


def _confusion_start(priors: Sequence[Prior | None], n_classes: int) -> dict[str, Any]:
    default = np.full((n_classes, n_classes), (1 - _DEFAULT_RATE) / max(1, n_classes - 1))
    np.fill_diagonal(default, _DEFAULT_RATE)
    matrices, any_known = [], False
    for prior in priors:
        given = None if prior is None or prior.confusion is None else np.asarray(prior.confusion)
        if given is not None and given.shape == (n_classes, n_classes) and np.all(given >= 0):
            smoothed = np.clip(given, _RATE_FLOOR / n_classes, None)
            matrices.append(smoothed / smoothed.sum(axis=1, keepdims=True))
            any_known = True
        else:
            matrices.append(default)
    return {"confusion": np.stack(matrices)} if any_known else {}


def _run(
    method: str, masks: np.ndarray, n_classes: int, priors: Sequence[Prior | None]
) -> ConsensusResult:
    if method == "staple" and n_classes > 2:
        method = "staple_multiclass"
    if method == "staple":
        return run_consensus("staple", masks, **_binary_start(priors))
    if method in ("staple_multiclass", "dawid_skene"):
        return run_consensus(
            method, masks, n_classes=n_classes, **_confusion_start(priors, n_classes)
        )
    if method == "weighted_vote":
        weights = []
        for prior in priors:
            if (
                prior is not None
                and prior.sensitivity is not None
                and prior.specificity is not None
            ):
                weights.append((prior.sensitivity + prior.specificity) / 2)
            else:
                weights.append(1.0)
        return run_consensus(method, masks, n_classes=n_classes, weights=weights)
    return run_consensus(method, masks, n_classes=n_classes)


def _binary_rates(counts: np.ndarray) -> tuple[float | None, float | None]:
    """Sensitivity and specificity of foreground (any class > 0) from [true][said] counts."""
    fg_true = counts[1:, :].sum()
    bg_true = counts[0, :].sum()
    sens = float(counts[1:, 1:].sum() / fg_true) if fg_true > 0 else None
    spec = float(counts[0, 0] / bg_true) if bg_true > 0 else None
    return sens, spec


def merge_masks(
    masks: np.ndarray,
    *,
    method: str,
    n_classes: int,
    priors: Sequence[Prior | None] | None = None,
    contested_share: float = 0.8,
) -> RegionMerge:
    """Merge ``(R, H, W)`` masks with the registry ``method`` started from ``priors``.

    Args:
        masks: ``(R, H, W)`` int16 compact class indices, ``NOT_RATED`` where a rater could
            not assess.
        method: a name from :func:`annotation.consensus.method_names`.
        n_classes: C including background.
        priors: per rater, carried reliability or None (cold start).
        contested_share: majority share below which a rated pixel is contested.
    """
    masks = np.asarray(masks, dtype=np.int16)
    if masks.ndim != 3 or masks.shape[0] < 1:
        raise ValueError(f"masks must be (R, H, W) with R >= 1, got {masks.shape}")
    n_raters = masks.shape[0]
    priors = list(priors) if priors is not None else [None] * n_raters
    if len(priors) != n_raters:
        raise ValueError(f"{len(priors)} priors for {n_raters} raters")
    rated = [bool((m >= 0).any()) for m in masks]

    votes = majority_vote(masks, n_classes=n_classes)
    share = votes.posterior.astype(np.float32)  # (C, H, W); uniform where nobody rated
    anyone = votes.labels >= 0
    if any(rated):
        result = _run(method, masks, n_classes, priors)
        labels = result.labels
        posterior = result.posterior.astype(np.float32)
        ran, iterations, converged = result.method, result.iterations, result.converged
    else:  # every rater said "cannot assess": nothing to merge
        labels = np.full(masks.shape[1:], NOT_RATED, dtype=np.int16)
        posterior = share
        ran, iterations, converged = method, 0, True
    undecided = (labels >= n_classes) & anyone
    contested = anyone & ((share.max(axis=0) < contested_share) | undecided)

    class_dice = np.ones(n_classes)
    dice = 1.0
    kappa: float | None = None
    rater_dice = np.ones(n_raters)
    index = [r for r in range(n_raters) if rated[r]]
    if len(index) >= 1:
        subset = masks[index]
        overlap = agreement.pairwise_overlap(subset, n_classes)
        class_dice = agreement.mean_pairwise(overlap.dice)
        marked = [c for c in range(1, n_classes) if (overlap.union[c] > 0).any()]
        dice = float(np.mean(class_dice[marked])) if marked else 1.0
        if len(index) >= 2:
            value = agreement.fleiss_kappa(subset.reshape(len(index), -1), n_classes)
            kappa = None if not np.isfinite(value) else float(value)
        versus = agreement.rater_vs_consensus(subset, labels, n_classes)
        for position, r in enumerate(index):
            present = [
                c
                for c in range(1, n_classes)
                if (subset[position] == c).any() or (labels == c).any()
            ]
            rater_dice[r] = float(np.mean(versus.dice[position, present])) if present else 1.0

    # Expected [true][said] pixel counts per rater from the posterior (evidence for reliability).
    decided = posterior.reshape(n_classes, -1)
    raters: list[dict[str, Any]] = []
    for r in range(n_raters):
        said = masks[r].reshape(-1)
        counts = np.zeros((n_classes, n_classes))
        if rated[r]:
            ok = said >= 0
            for c in range(n_classes):
                counts[:, c] = decided[:, ok & (said == c)].sum(axis=1, dtype=np.float64)
        rows = counts.sum(axis=1, keepdims=True)
        confusion = np.where(rows > 0, counts / np.where(rows > 0, rows, 1.0), np.eye(n_classes))
        sens, spec = _binary_rates(counts)
        raters.append(
            {
                "rated": rated[r],
                "dice": float(rater_dice[r]) if rated[r] else None,
                "sensitivity": sens,
                "specificity": spec,
                "confusion": confusion.round(6).tolist(),
                "counts": counts.round(3).tolist(),
            }
        )
    return RegionMerge(
        labels=labels.astype(np.int16),
        posterior=posterior,
        vote_share=share,
        contested=contested,
        method=ran,
        class_dice=class_dice,
        dice=dice,
        fleiss_kappa=kappa,
        raters=raters,
        iterations=iterations,
        converged=converged,
    )


def escalation_status(
    *, dice: float, contested_fraction: float, n_rated: int, n_worked: int, thresholds: Thresholds
) -> str:
    """accepted / needs_more / needs_adjudication from the project's thresholds.

    Accepted at ``dice >= accept_dice`` with ``contested_fraction <= max_contested_fraction``;
    otherwise more annotators while ``dice >= escalate_dice`` and fewer than ``k_max`` worked
    on it; otherwise an expert. Fewer than two raters who could assess (when k asks for two or
    more) is short of evidence, not agreement: more annotators, or an expert at k_max.
    """
    enough = n_rated >= min(2, thresholds.k)
    if (
        enough
        and dice >= thresholds.accept_dice
        and (contested_fraction <= thresholds.max_contested_fraction)
    ):
        return ACCEPTED
    if (not enough or dice >= thresholds.escalate_dice) and n_worked < thresholds.k_max:
        return NEEDS_MORE
    return NEEDS_ADJUDICATION
