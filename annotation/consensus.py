"""Consensus of several raters' label masks: votes, STAPLE, Dawid-Skene (pure numpy, no Django).

Inputs are label masks of shape ``(R, H, W)`` (or ``(R, N)`` for one label per region/item):
integer class ids ``0 .. C-1`` per pixel, and any negative value (:data:`NOT_RATED`) where a
rater did not rate the pixel. Every method returns a :class:`ConsensusResult` with the
consensus labels, a per-class posterior (or vote share) per pixel, and per-rater estimates.

Methods are registered by name (:func:`get_method`, :func:`run_consensus`):

========================  ====================================================================
``majority_vote``         most votes; ties to the lower class id unless ``tie`` is given
``weighted_vote``         per-rater weights (e.g. reliabilities from earlier rounds)
``staple``                binary STAPLE (Warfield et al. 2004), as SimpleITK's STAPLEImageFilter
``staple_multiclass``     per-rater confusion matrices, as SimpleITK's MultiLabelSTAPLE
``dawid_skene``           Dawid-Skene EM for class labels, started from the majority vote
========================  ====================================================================

All methods work on the distinct per-pixel vote patterns weighted by their counts (see
:mod:`annotation.vote_patterns`), which is what makes them fast on whole regions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from annotation import dawid_skene as _ds
from annotation import staple as _staple
from annotation.vote_patterns import (
    NOT_RATED,
    FloatArray,
    PatternFit,
    VotePatterns,
    compress,
    rows_to_confusion,
)

logger = logging.getLogger(__name__)

__all__ = [
    "NOT_RATED",
    "ConsensusResult",
    "RaterEstimates",
    "UnknownMethodError",
    "dawid_skene",
    "get_method",
    "majority_vote",
    "method_names",
    "register_method",
    "run_consensus",
    "staple",
    "staple_multiclass",
    "weighted_vote",
]

# Weighted sums closer than this (relative to the pixel's total weight) count as a tie, so
# that weights such as 0.1 + 0.2 versus 0.3 tie as a person would expect.
_TIE_RTOL: Final = 1e-9


@dataclass(frozen=True)
class RaterEstimates:
    """Per-rater estimates from one consensus run.

    Attributes:
        confusion: ``(R, C, C)`` float64, ``[r, i, j]`` = P(rater r labels j | true class i);
            rows sum to 1. A row with no evidence (class i never occurred among the pixels the
            rater rated) is the identity row, i.e. no evidence of error; see ``support``.
        support: ``(R, C)`` float64, expected number of pixels of true class i that rater r
            rated: the evidence behind each row. Weight by it when pooling across regions.
    """

    confusion: FloatArray
    support: FloatArray

    @property
    def sensitivity(self) -> FloatArray:
        """``(R,)`` P(rater says 1 | truth 1); binary (C == 2) results only."""
        self._require_binary("sensitivity")
        return self.confusion[:, 1, 1]

    @property
    def specificity(self) -> FloatArray:
        """``(R,)`` P(rater says 0 | truth 0); binary (C == 2) results only."""
        self._require_binary("specificity")
        return self.confusion[:, 0, 0]

    @property
    def class_recall(self) -> FloatArray:
        """``(R, C)`` P(rater says i | truth i): per-class sensitivity."""
        return np.diagonal(self.confusion, axis1=1, axis2=2).copy()

    def _require_binary(self, name: str) -> None:
        if self.confusion.shape[1] != 2:
            raise ValueError(f"{name} is defined for 2 classes; use confusion or class_recall")


@dataclass(frozen=True)
class ConsensusResult:
    """The consensus of R raters over pixels (``S = (H, W)``) or items (``S = (N,)``).

    Attributes:
        labels: ``S`` int16 consensus class id; ``NOT_RATED`` (-1) where no rater rated the
            pixel; a tie/undecided label where the method was asked for one.
        posterior: (property) ``(C, *S)`` float64 probability of each class per pixel, built
            on first access; :meth:`class_posterior` builds one class's map.
        raters: per-rater estimates.
        prior: ``(C,)`` float64 class prior the method used (vote methods: overall vote share).
        method: registry name of the method.
        iterations: EM iterations run (0 for votes).
        converged: False only when an EM stopped at its iteration cap.
        patterns: the vote patterns the method ran on.
        pattern_posterior: ``(C, P)`` float64 posterior of each vote pattern; ``posterior``
            spreads it over the pixels.
    """

    labels: npt.NDArray[np.int16]
    raters: RaterEstimates
    prior: FloatArray
    method: str
    iterations: int
    converged: bool
    patterns: VotePatterns = field(repr=False, compare=False)
    pattern_posterior: FloatArray = field(repr=False, compare=False)

    @property
    def n_classes(self) -> int:
        """C, the number of classes."""
        return int(self.pattern_posterior.shape[0])

    @cached_property
    def posterior(self) -> FloatArray:
        """``(C, *S)`` float64 probability of each class per pixel (vote share for votes).

        Built on first access and kept: at 4 classes a 2048x2048 region is 128 MB, which a
        caller that needs only the labels should not pay for.
        """
        return self.patterns.scatter(self.pattern_posterior)

    def class_posterior(self, label: int) -> FloatArray:
        """``S`` float64 probability of class ``label`` per pixel, e.g. a foreground map.

        Builds one class's map only (SimpleITK's STAPLE output for the binary case), unless
        :attr:`posterior` has been built already.
        """
        if not 0 <= label < self.n_classes:
            raise ValueError(f"label must be in 0..{self.n_classes - 1}, got {label}")
        if "posterior" in self.__dict__:  # cached_property stores its value here
            return self.posterior[label]
        return self.patterns.scatter(self.pattern_posterior[label])


ConsensusMethod = Callable[..., ConsensusResult]
_METHODS: dict[str, ConsensusMethod] = {}


class UnknownMethodError(LookupError):
    """Raised for a consensus method name that is not registered."""


def register_method(name: str) -> Callable[[ConsensusMethod], ConsensusMethod]:
    """Register a consensus function under ``name`` (a decorator)."""

    def decorate(func: ConsensusMethod) -> ConsensusMethod:
        if name in _METHODS:
            raise ValueError(f"consensus method {name!r} is already registered")
        _METHODS[name] = func
        return func

    return decorate


def method_names() -> tuple[str, ...]:
    """Names of the registered consensus methods, sorted."""
    return tuple(sorted(_METHODS))


def get_method(name: str) -> ConsensusMethod:
    """Return the consensus function registered as ``name``.

    Raises:
        UnknownMethodError: naming the known methods.
    """
    try:
        return _METHODS[name]
    except KeyError:
        known = ", ".join(method_names())
        raise UnknownMethodError(f"unknown consensus method {name!r}; known: {known}") from None


def run_consensus(name: str, masks: np.ndarray, **options: object) -> ConsensusResult:
    """Run the method registered as ``name`` on ``(R, *S)`` masks with keyword ``options``."""
    return get_method(name)(masks, **options)


def _result(patterns: VotePatterns, fit: PatternFit, method: str) -> ConsensusResult:
    logger.debug(
        "%s: %d raters, %d pixels, %d vote patterns, %d iterations, converged=%s",
        method,
        patterns.n_raters,
        patterns.codes.shape[0],
        patterns.counts.shape[0],
        fit.iterations,
        fit.converged,
    )
    return ConsensusResult(
        labels=patterns.scatter(fit.labels),
        raters=RaterEstimates(confusion=fit.confusion, support=fit.support),
        prior=fit.prior,
        method=method,
        iterations=fit.iterations,
        converged=fit.converged,
        patterns=patterns,
        pattern_posterior=fit.posterior,
    )


def _check_label(name: str, value: int | None) -> None:
    if value is not None and not -(2**15) <= int(value) < 2**15:
        raise ValueError(f"{name} must fit in int16, got {value}")


def _vote_fit(patterns: VotePatterns, weights: FloatArray, tie: int | None) -> PatternFit:
    """Weighted vote over patterns: scores, tie rule, and each rater against the result."""
    onehot = patterns.onehot  # (P, R, C)
    scores = np.einsum("prc,r->pc", onehot, weights)
    total = scores.sum(axis=1)
    n_classes = patterns.n_classes
    voted = total > 0
    share = np.where(voted[:, None], scores / np.where(voted, total, 1.0)[:, None], 1.0 / n_classes)
    top = scores.max(axis=1)
    near_top = scores >= (top - _TIE_RTOL * total)[:, None]
    # argmax of a boolean row is its first True: the lowest tied class, the default rule.
    labels = near_top.argmax(axis=1)
    if tie is not None:
        labels = np.where(near_top.sum(axis=1) > 1, tie, labels)
    labels = np.where(voted, labels, NOT_RATED).astype(np.int16)

    decided = (labels >= 0) & (labels < n_classes)
    truth = np.zeros((n_classes, labels.shape[0]))
    truth[labels[decided], np.flatnonzero(decided)] = 1.0
    confusion, support = rows_to_confusion(patterns.weighted_votes(truth))
    counts = patterns.counts.astype(np.float64)
    overall = counts @ scores
    prior = overall / overall.sum() if overall.sum() > 0 else np.full(n_classes, 1 / n_classes)
    return PatternFit(
        labels=labels,
        posterior=share.T.copy(),
        confusion=confusion,
        support=support,
        prior=prior,
        iterations=0,
        converged=True,
    )


@register_method("majority_vote")
def majority_vote(
    masks: np.ndarray, *, n_classes: int | None = None, tie: int | None = None
) -> ConsensusResult:
    """Per-pixel majority vote over the raters who rated the pixel.

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        n_classes: C; default 1 + the largest class id present.
        tie: label for pixels where several classes share the most votes; default None gives
            such pixels the lowest of the tied class ids.

    Returns:
        Labels, vote shares as posterior, and each rater's confusion against the consensus
        (pixels with a tie label or no rating left out).
    """
    _check_label("tie", tie)
    patterns = compress(masks, n_classes)
    weights = np.ones(patterns.n_raters)
    return _result(patterns, _vote_fit(patterns, weights, tie), "majority_vote")


@register_method("weighted_vote")
def weighted_vote(
    masks: np.ndarray,
    *,
    weights: npt.ArrayLike,
    n_classes: int | None = None,
    tie: int | None = None,
) -> ConsensusResult:
    """Per-pixel vote where rater r's vote counts ``weights[r]``.

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        weights: ``(R,)`` non-negative finite weights (e.g. reliabilities); a pixel whose
            raters all weigh 0 is treated as unrated.
        n_classes: C; default 1 + the largest class id present.
        tie: as in :func:`majority_vote`; sums within 1e-9 of the pixel's total weight tie.
    """
    _check_label("tie", tie)
    patterns = compress(masks, n_classes)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (patterns.n_raters,) or not np.all(np.isfinite(w) & (w >= 0)):
        raise ValueError(f"weights must be {patterns.n_raters} finite values >= 0")
    return _result(patterns, _vote_fit(patterns, w, tie), "weighted_vote")


@register_method("staple")
def staple(
    masks: np.ndarray,
    *,
    foreground: int = 1,
    prior: float | None = None,
    sensitivity: npt.ArrayLike | None = None,
    specificity: npt.ArrayLike | None = None,
    tol: float = _staple.BINARY_TOL,
    max_iter: int = _staple.DEFAULT_MAX_ITER,
) -> ConsensusResult:
    """Binary STAPLE (Warfield, Zou, Wells 2004), as SimpleITK's STAPLEImageFilter.

    A pixel labelled ``foreground`` is foreground, any other rated label background. Labels
    are 1 where the posterior is > 0.5; a posterior of exactly 0.5 is background (0),
    consistent with vote ties going to the lower class id. Started without rates it matches
    SimpleITK (same start, prior, and convergence test).

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        foreground: class id counted as foreground.
        prior: fixed P(foreground); default the overall foreground vote share (ITK's g_t).
        sensitivity: ``(R,)`` initial sensitivities, e.g. carried from an earlier round.
        specificity: ``(R,)`` initial specificities (give both or neither).
        tol: stop when no sensitivity or specificity moved by more than this.
        max_iter: iteration cap.

    Returns:
        Labels in {0, 1} (NOT_RATED where nobody rated), posterior ``(2, *S)``, per-rater
        confusion ``[[q, 1-q], [1-p, p]]`` (``raters.sensitivity``/``specificity``).
    """
    # Only "foreground or not" matters: binarised while encoding, at most 3^R patterns.
    patterns = compress(masks, foreground=foreground)
    fit = _staple.staple_binary(
        patterns,
        foreground=1,
        prior=prior,
        sensitivity=None if sensitivity is None else np.asarray(sensitivity, np.float64),
        specificity=None if specificity is None else np.asarray(specificity, np.float64),
        tol=tol,
        max_iter=max_iter,
    )
    return _result(patterns, fit, "staple")


@register_method("staple_multiclass")
def staple_multiclass(
    masks: np.ndarray,
    *,
    n_classes: int | None = None,
    prior: npt.ArrayLike | None = None,
    confusion: npt.ArrayLike | None = None,
    init: _staple.MultiInit = "vote",
    undecided: int | None = None,
    tol: float = _staple.MULTICLASS_TOL,
    max_iter: int = _staple.DEFAULT_MAX_ITER,
) -> ConsensusResult:
    """Multi-class STAPLE with per-rater confusion matrices (Rohlfing et al. 2004).

    With ``init="itk"`` it reproduces SimpleITK's MultiLabelSTAPLEImageFilter, including its
    undecided pixels: where the largest posterior is shared by several classes (or every class
    has zero likelihood) the label is ``undecided``, by default C (one past the largest class
    id, ITK's default). The default ``init="vote"`` starts from the soft majority vote instead
    of ITK's start, which mis-files tied votes (see :func:`annotation.staple._itk_vote_init`).

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        n_classes: C; default 1 + the largest class id present (ITK's choice).
        prior: ``(C,)`` fixed class prior; default each class's share of all rated votes.
        confusion: ``(R, C, C)`` initial ``[r, true, said]`` matrices from an earlier round.
        init: ``"vote"`` or ``"itk"``, the start when ``confusion`` is not given.
        undecided: label for undecided pixels; default C.
        tol: stop when no confusion-matrix entry moved by ``tol`` or more.
        max_iter: iteration cap.
    """
    _check_label("undecided", undecided)
    patterns = compress(masks, n_classes)
    fit = _staple.staple_multiclass(
        patterns,
        prior=None if prior is None else np.asarray(prior, np.float64),
        confusion=None if confusion is None else np.asarray(confusion, np.float64),
        init=init,
        undecided=undecided,
        tol=tol,
        max_iter=max_iter,
    )
    return _result(patterns, fit, "staple_multiclass")


@register_method("dawid_skene")
def dawid_skene(
    masks: np.ndarray,
    *,
    n_classes: int | None = None,
    confusion: npt.ArrayLike | None = None,
    tol: float = _ds.DS_TOL,
    max_iter: int = _ds.DS_MAX_ITER,
) -> ConsensusResult:
    """Dawid-Skene for class labels, initialised from the majority vote (as crowd-kit).

    Meant for one label per rater per region (``masks`` of shape ``(R, N)``), but any
    ``(R, *S)`` works: items with the same votes share a posterior.

    Args:
        masks: ``(R, *S)`` integer class ids, negative = not rated.
        n_classes: C; default 1 + the largest class id present.
        confusion: ``(R, C, C)`` initial ``[r, true, said]`` matrices from an earlier round.
        tol: stop when no prior or confusion entry moved by ``tol`` or more.
        max_iter: iteration cap.

    Returns:
        Labels (most probable class, ties to the lower id), posteriors ``(C, *S)``, per-rater
        confusion matrices, and the estimated class prior.
    """
    patterns = compress(masks, n_classes)
    fit = _ds.dawid_skene(
        patterns,
        confusion=None if confusion is None else np.asarray(confusion, np.float64),
        tol=tol,
        max_iter=max_iter,
    )
    return _result(patterns, fit, "dawid_skene")
