"""Dawid-Skene EM for class labels, run over vote patterns (pure numpy).

Dawid and Skene (Applied Statistics 28, 1979): each rater has a confusion matrix, items have a
latent true class with a prior; EM alternates the posterior of each item's class (E) with the
priors and matrices (M). Items with the same vote pattern share a posterior, so EM runs over
the distinct patterns weighted by their counts.

Started, like crowd-kit's ``DawidSkene``, from the (unweighted, soft) majority vote: its class
shares give the first prior and M-step. crowd-kit clips summed counts below 1e-10 before
normalising (only for labels the rater actually used) and the prior below 1e-10 in the E-step;
we do the same, so fixed-iteration runs agree with crowd-kit to rounding.

Use :mod:`annotation.consensus` for the public API.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from annotation.vote_patterns import FloatArray, PatternFit, VotePatterns, rows_to_confusion

logger = logging.getLogger(__name__)

_EPS: Final = 1e-10
DS_TOL: Final = 1e-6
DS_MAX_ITER: Final = 100


def _soft_vote(patterns: VotePatterns) -> FloatArray:
    """``(P, C)`` share of each class among a pattern's rated votes (zeros if none)."""
    votes = patterns.onehot.sum(axis=1)
    n_votes = votes.sum(axis=1, keepdims=True)
    return np.where(n_votes > 0, votes / np.where(n_votes > 0, n_votes, 1.0), 0.0)


def _prior(patterns: VotePatterns, posterior: FloatArray, has_votes: np.ndarray) -> FloatArray:
    """Mean posterior over items that have at least one rating."""
    counts = patterns.counts * has_votes
    total = counts.sum()
    if total == 0:
        return np.full(patterns.n_classes, 1.0 / patterns.n_classes)
    return (counts @ posterior) / total


def _m_step(patterns: VotePatterns, posterior: FloatArray, used: np.ndarray) -> FloatArray:
    """``(R, C_said, C_true)`` error matrices from ``(P, C)`` posteriors (crowd-kit layout)."""
    expected = patterns.weighted_votes(posterior.T)  # (R, true, said)
    errors = expected.transpose(0, 2, 1).copy()  # (R, said, true)
    # crowd-kit clips only the (rater, label) rows that occur in the data.
    errors = np.where(used[:, :, None], np.maximum(errors, _EPS), 0.0)
    sums = errors.sum(axis=1, keepdims=True)
    return errors / np.where(sums > 0, sums, 1.0)


def _e_step(patterns: VotePatterns, prior: FloatArray, errors: FloatArray) -> FloatArray:
    """``(P, C)`` posteriors, computed in log space so long products do not underflow."""
    n_classes = patterns.n_classes
    with np.errstate(divide="ignore"):
        log_like = np.repeat(np.log(np.maximum(prior, _EPS))[None, :], len(patterns.counts), 0)
        for r in range(patterns.n_raters):
            table = np.concatenate([np.log(errors[r]), np.zeros((1, n_classes))])
            index = np.where(patterns.votes[:, r] >= 0, patterns.votes[:, r], n_classes)
            log_like += table[index]
    top = log_like.max(axis=1, keepdims=True)
    finite = np.isfinite(top)
    scaled = np.exp(log_like - np.where(finite, top, 0.0))
    posterior = scaled / scaled.sum(axis=1, keepdims=True)
    # Every class impossible under the given matrices: fall back to the prior.
    return np.where(finite, posterior, prior[None, :])


def dawid_skene(
    patterns: VotePatterns,
    *,
    confusion: FloatArray | None = None,
    tol: float = DS_TOL,
    max_iter: int = DS_MAX_ITER,
) -> PatternFit:
    """Dawid-Skene over vote patterns.

    Args:
        patterns: vote patterns of items (or pixels); unrated votes are left out.
        confusion: ``(R, C, C)`` initial ``[r, true, said]`` matrices carried from an earlier
            round; they replace the M-step from the majority vote (crowd-kit's "assign").
        tol: stop when no prior or matrix entry moved by ``tol`` or more in an iteration.
        max_iter: iteration cap (crowd-kit's ``n_iter``); each iteration is E-step, then
            prior and M-step, as in crowd-kit.

    Returns:
        The fit. ``posterior`` is from the last E-step and ``confusion``/``prior`` from the
        last M-step (crowd-kit's order); labels are the most probable class, ties to the lower
        class id; items nobody rated get label NOT_RATED and the prior as posterior.
    """
    n_classes = patterns.n_classes
    n_raters = patterns.n_raters
    has_votes = patterns.rated.any(axis=1)
    used = np.zeros((n_raters, n_classes), dtype=bool)
    for r in range(n_raters):
        labels_used = patterns.votes[:, r]
        used[r, labels_used[labels_used >= 0]] = True

    posterior = _soft_vote(patterns)
    prior = _prior(patterns, posterior, has_votes)
    if confusion is None:
        errors = _m_step(patterns, posterior, used)
    else:
        given = np.asarray(confusion, dtype=np.float64)
        if given.shape != (n_raters, n_classes, n_classes):
            raise ValueError(f"confusion must have shape {(n_raters, n_classes, n_classes)}")
        errors = given.transpose(0, 2, 1).copy()

    converged = False
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        posterior = _e_step(patterns, prior, errors)
        new_prior = _prior(patterns, posterior, has_votes)
        new_errors = _m_step(patterns, posterior, used)
        change = max(np.max(np.abs(new_errors - errors)), np.max(np.abs(new_prior - prior)))
        prior, errors = new_prior, new_errors
        if change < tol:
            converged = True
            break
    if not converged and max_iter > 0:
        logger.info("Dawid-Skene ran max_iter=%d iterations without converging", max_iter)

    # argmax returns the first maximum: ties go to the lower class id, as crowd-kit's idxmax.
    labels = np.where(has_votes, posterior.argmax(axis=1), -1).astype(np.int16)
    expected = patterns.weighted_votes(posterior.T)
    _, support = rows_to_confusion(expected)
    return PatternFit(
        labels=labels,
        posterior=np.where(has_votes[:, None], posterior, prior[None, :]).T.copy(),
        confusion=errors.transpose(0, 2, 1).copy(),
        support=support,
        prior=prior,
        iterations=iteration,
        converged=converged,
    )
