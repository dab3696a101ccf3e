"""STAPLE, binary and multi-class, run over vote patterns (pure numpy).

Binary STAPLE follows Warfield, Zou and Wells (IEEE TMI 2004) as ITK's ``STAPLEImageFilter``
implements it; multi-class STAPLE follows Rohlfing et al. (IEEE TMI 2004) as ITK's
``MultiLabelSTAPLEImageFilter`` implements it. Both EMs depend on a pixel only through its
vote pattern, so they run on :class:`~annotation.vote_patterns.VotePatterns` (at most 2^R or
C^R rows) weighted by the pattern counts. Products over raters are taken in rater order, the
order ITK uses, so the per-pattern arithmetic is the same as ITK's per-pixel arithmetic; only
the sums over pixels are grouped differently (differences near 1e-15).

Use :mod:`annotation.consensus` for the public, pixel-level API.
"""

from __future__ import annotations

import logging
from typing import Final, Literal

import numpy as np

from annotation.vote_patterns import FloatArray, PatternFit, VotePatterns, rows_to_confusion

logger = logging.getLogger(__name__)

# ITK's STAPLEImageFilter stops when every (change in p or q)^2 <= 1e-14, i.e. |change| <= 1e-7.
BINARY_TOL: Final = 1e-7
# ITK's MultiLabelSTAPLEImageFilter default termination threshold (largest matrix change).
MULTICLASS_TOL: Final = 1e-5
DEFAULT_MAX_ITER: Final = 10_000

MultiInit = Literal["vote", "itk"]


def _check_rates(name: str, values: FloatArray | None, n_raters: int) -> FloatArray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape != (n_raters,) or not np.all((arr >= 0) & (arr <= 1)):
        raise ValueError(f"{name} must be {n_raters} values in [0, 1], got {values!r}")
    return arr


def staple_binary(
    patterns: VotePatterns,
    *,
    foreground: int = 1,
    prior: float | None = None,
    sensitivity: FloatArray | None = None,
    specificity: FloatArray | None = None,
    tol: float = BINARY_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> PatternFit:
    """Binary STAPLE over vote patterns.

    Without ``sensitivity``/``specificity`` it starts as ITK does: the first posterior is each
    pixel's fraction of foreground votes, then M-step (p, q), E-step (posterior) until every
    p and q moved by at most ``tol`` since the previous iteration (never on the first). With
    them (carried over from an earlier round) it starts with an E-step from those rates, and
    may stop after one iteration when they are already the fixed point.

    Args:
        patterns: vote patterns; a vote equal to ``foreground`` is foreground, any other rated
            vote is background (ITK's ForegroundValue semantics).
        foreground: the class id that counts as foreground.
        prior: P(foreground), fixed through EM; default the mean foreground vote over all rated
            (rater, pixel) pairs (ITK's g_t with ConfidenceWeight 1).
        sensitivity: ``(R,)`` initial p per rater, or None.
        specificity: ``(R,)`` initial q per rater, or None (give both or neither).
        tol: convergence threshold on the largest change of any p or q.
        max_iter: iteration cap.

    Returns:
        A 2-class fit: posterior ``[1 - W, W]``; label 1 where W > 0.5 (a posterior of exactly
        0.5 is background, as vote ties go to the lower class id); confusion
        ``[[q, 1 - q], [1 - p, p]]`` per rater. A rate whose denominator is zero (no estimated
        foreground, or no background) keeps its previous value (initially 1.0) instead of
        ITK's 0/0 = NaN.
    """
    n_raters = patterns.n_raters
    sens0 = _check_rates("sensitivity", sensitivity, n_raters)
    spec0 = _check_rates("specificity", specificity, n_raters)
    if (sens0 is None) != (spec0 is None):
        raise ValueError("give both sensitivity and specificity, or neither")
    rated = patterns.rated
    fg = rated & (patterns.votes == foreground)
    bg = rated & ~fg
    counts = patterns.counts.astype(np.float64)
    n_fg = fg.sum(axis=1)
    n_rated = rated.sum(axis=1)

    if prior is None:
        total = float(counts @ n_rated)
        g_t = float(counts @ n_fg) / total if total > 0 else 0.0
    else:
        g_t = float(prior)
        if not 0.0 <= g_t <= 1.0:
            raise ValueError(f"prior must be in [0, 1], got {prior}")

    def e_step(p: FloatArray, q: FloatArray) -> FloatArray:
        # Per (pattern, rater) factors; 1 where the rater did not rate (no evidence).
        a_factor = np.where(rated, np.where(fg, p, 1.0 - p), 1.0)
        b_factor = np.where(rated, np.where(fg, 1.0 - q, q), 1.0)
        alpha = a_factor[:, 0].copy()
        beta = b_factor[:, 0].copy()
        for r in range(1, n_raters):
            # Multiplied in rater order as ITK does, so each pattern's W equals ITK's W.
            alpha *= a_factor[:, r]
            beta *= b_factor[:, r]
        num = g_t * alpha
        den = num + (1.0 - g_t) * beta
        # Contradictory evidence (every class impossible) gives ITK NaN; fall back to the prior.
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, g_t)

    fgf = fg.astype(np.float64)
    bgf = bg.astype(np.float64)
    ratedf = rated.astype(np.float64)
    if sens0 is None or spec0 is None:
        p = np.ones(n_raters)
        q = np.ones(n_raters)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = np.where(n_rated > 0, n_fg / np.maximum(n_rated, 1), g_t)
        last: tuple[FloatArray, FloatArray] | None = None
    else:
        p, q = sens0.copy(), spec0.copy()
        weight = e_step(p, q)
        last = (p, q)

    converged = False
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        w_fg = counts * weight
        w_bg = counts * (1.0 - weight)
        p_den = ratedf.T @ w_fg
        q_den = ratedf.T @ w_bg
        p = np.where(p_den > 0, (fgf.T @ w_fg) / np.where(p_den > 0, p_den, 1.0), p)
        q = np.where(q_den > 0, (bgf.T @ w_bg) / np.where(q_den > 0, q_den, 1.0), q)
        weight = e_step(p, q)
        if last is not None:
            change = max(np.max(np.abs(p - last[0])), np.max(np.abs(q - last[1])))
            if change <= tol:
                converged = True
                break
        last = (p.copy(), q.copy())
    if not converged:
        logger.warning("binary STAPLE stopped at max_iter=%d before converging", max_iter)

    posterior = np.stack([1.0 - weight, weight])
    confusion = np.empty((n_raters, 2, 2))
    confusion[:, 0, 0] = q
    confusion[:, 0, 1] = 1.0 - q
    confusion[:, 1, 0] = 1.0 - p
    confusion[:, 1, 1] = p
    labels = np.where(n_rated > 0, (weight > 0.5).astype(np.int16), np.int16(-1))
    return PatternFit(
        labels=labels.astype(np.int16),
        posterior=posterior,
        confusion=confusion,
        support=np.stack([ratedf.T @ (counts * (1.0 - weight)), ratedf.T @ (counts * weight)], 1),
        prior=np.array([1.0 - g_t, g_t]),
        iterations=iteration,
        converged=converged,
    )


def _itk_vote_init(patterns: VotePatterns) -> FloatArray:
    """ITK 5.4's confusion-matrix start, reproduced exactly, including its quirks.

    ITK counts, per rater, (rater's label j, plain majority vote m) into a (C+1) x C matrix and
    normalises each *row* j over m. The vote's undecided label is C, one past the last column;
    ITK's unchecked ``matrix[j][C]`` lands on ``matrix[j + 1][0]`` (rows are contiguous), so
    every tied pixel adds a count to "rater said j+1, truth 0". We keep that so results match
    SimpleITK to the pixel (ITK later fixed it by skipping undecided pixels; use init="vote").
    """
    n_classes = patterns.n_classes
    onehot = patterns.onehot
    votes_per_class = onehot.sum(axis=1)  # (P, C)
    top = votes_per_class.max(axis=1)
    tied = (votes_per_class == top[:, None]).sum(axis=1) > 1
    majority = np.where(tied, n_classes, votes_per_class.argmax(axis=1))
    theta = np.zeros((patterns.n_raters, n_classes + 1, n_classes))
    for r in range(patterns.n_raters):
        ok = patterns.votes[:, r] >= 0
        flat_index = patterns.votes[ok, r].astype(np.int64) * n_classes + majority[ok]
        theta[r].reshape(-1)[:] = np.bincount(
            flat_index, weights=patterns.counts[ok], minlength=(n_classes + 1) * n_classes
        )
    row_sums = theta.sum(axis=2, keepdims=True)
    return np.where(row_sums > 0, theta / np.where(row_sums > 0, row_sums, 1.0), theta)


def _m_step(patterns: VotePatterns, weight: FloatArray) -> FloatArray:
    """``(R, C+1, C)`` matrices ``[r, j, c]`` = P(rater says j | true c) from ``(P, C)`` W."""
    n_classes = patterns.n_classes
    counts = patterns.weighted_votes(weight.T)  # (R, true c, said j)
    theta = np.zeros((patterns.n_raters, n_classes + 1, n_classes))
    theta[:, :n_classes, :] = counts.transpose(0, 2, 1)
    col_sums = theta.sum(axis=1, keepdims=True)
    return np.where(col_sums > 0, theta / np.where(col_sums > 0, col_sums, 1.0), theta)


def _likelihood(patterns: VotePatterns, theta: FloatArray, prior: FloatArray) -> FloatArray:
    """Unnormalised ``(P, C)`` W = prior * prod over raters of theta[r, vote, :]."""
    weight = np.repeat(prior[None, :], patterns.votes.shape[0], axis=0)
    ones = np.ones((1, patterns.n_classes))
    for r in range(patterns.n_raters):
        table = np.concatenate([theta[r], ones])  # extra last row: "not rated" contributes 1
        weight *= np.take(table, patterns.row_index[r], axis=0)
    return weight


def _normalise(weight: FloatArray) -> FloatArray:
    # Summed class by class in order, like ITK, so ties it sees exactly are exact here too.
    total = weight[:, 0].copy()
    for c in range(1, weight.shape[1]):
        total += weight[:, c]
    return np.where(total[:, None] > 0, weight / np.where(total > 0, total, 1.0)[:, None], weight)


def staple_multiclass(
    patterns: VotePatterns,
    *,
    prior: FloatArray | None = None,
    confusion: FloatArray | None = None,
    init: MultiInit = "vote",
    undecided: int | None = None,
    tol: float = MULTICLASS_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> PatternFit:
    """Multi-class STAPLE (per-rater confusion matrices) over vote patterns.

    Iteration as ITK: E-step W = prior * prod theta[r, vote], normalised; M-step theta[r, j, c]
    = sum of W[c] over the rater's pixels labelled j, normalised over j; stop when no matrix
    entry moved by ``tol`` or more. The prior stays fixed (ITK does not re-estimate it).

    Args:
        patterns: vote patterns (unrated votes are left out of that rater's sums and products).
        prior: ``(C,)`` class prior; default each class's share of all rated votes (ITK).
        confusion: ``(R, C, C)`` initial ``[r, true, said]`` matrices (e.g. from an earlier
            round); overrides ``init``.
        init: ``"vote"`` (default): one M-step from the soft majority vote (tied pixels split
            their weight), the Dawid-Skene start; ``"itk"``: ITK 5.4 / SimpleITK 2.5's start,
            quirks included (see :func:`_itk_vote_init`); use it to reproduce SimpleITK.
        undecided: label for pixels whose largest unnormalised W is shared by several classes
            or is zero (ITK's undecided pixels); default C, ITK's default.
        tol: termination threshold on the largest confusion-matrix change.
        max_iter: iteration cap.

    Returns:
        The fit; ``confusion`` is ``(R, C, C)`` ``[r, true, said]`` (ITK's matrix transposed,
        without its always-zero "reject" row).
    """
    n_classes = patterns.n_classes
    n_raters = patterns.n_raters
    if prior is None:
        freq = patterns.onehot.sum(axis=1).T @ patterns.counts.astype(np.float64)
        total = freq.sum()
        prior_arr = freq / total if total > 0 else np.full(n_classes, 1.0 / n_classes)
    else:
        prior_arr = np.asarray(prior, dtype=np.float64).reshape(-1)
        if prior_arr.shape != (n_classes,) or np.any(prior_arr < 0):
            raise ValueError(f"prior must be {n_classes} non-negative values")
    if undecided is None:
        undecided = n_classes

    if confusion is not None:
        given = np.asarray(confusion, dtype=np.float64)
        if given.shape != (n_raters, n_classes, n_classes):
            raise ValueError(f"confusion must have shape {(n_raters, n_classes, n_classes)}")
        theta = np.zeros((n_raters, n_classes + 1, n_classes))
        theta[:, :n_classes, :] = given.transpose(0, 2, 1)
    elif init == "itk":
        theta = _itk_vote_init(patterns)
    elif init == "vote":
        onehot = patterns.onehot.sum(axis=1)
        n_votes = onehot.sum(axis=1, keepdims=True)
        soft = np.where(n_votes > 0, onehot / np.where(n_votes > 0, n_votes, 1.0), 0.0)
        theta = _m_step(patterns, soft)
    else:
        raise ValueError(f"init must be 'vote' or 'itk', got {init!r}")

    converged = False
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        updated = _m_step(patterns, _normalise(_likelihood(patterns, theta, prior_arr)))
        change = float(np.max(np.abs(updated - theta)))
        theta = updated
        if change < tol:
            converged = True
            break
    if not converged:
        logger.warning("multi-class STAPLE stopped at max_iter=%d before converging", max_iter)

    weight = _likelihood(patterns, theta, prior_arr)
    top = weight.max(axis=1)
    n_top = (weight == top[:, None]).sum(axis=1)
    labels = np.where((n_top == 1) & (top > 0), weight.argmax(axis=1), undecided)
    labels = np.where(patterns.rated.any(axis=1), labels, -1).astype(np.int16)
    total = weight.sum(axis=1, keepdims=True)
    # Where every class is impossible under the model, report the prior, not 0/0.
    posterior = np.where(total > 0, weight / np.where(total > 0, total, 1.0), prior_arr)
    counts = patterns.weighted_votes(posterior.T)
    reported, support = rows_to_confusion(counts)
    # Rows with evidence are the EM's own matrices (same numbers as ITK's, transposed).
    em_rows = theta[:, :n_classes, :].transpose(0, 2, 1)
    reported = np.where(support[:, :, None] > 0, em_rows, reported)
    return PatternFit(
        labels=labels,
        posterior=posterior.T.copy(),
        confusion=reported,
        support=support,
        prior=prior_arr,
        iterations=iteration,
        converged=converged,
    )
