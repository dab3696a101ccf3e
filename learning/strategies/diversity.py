"""Uncertainty + diversity: greedy k-center over the most uncertain candidates (pure)."""

from __future__ import annotations

import numpy as np

from learning.strategies.base import (
    Candidate,
    RoutingPolicy,
    Strategy,
    boxes_conflict,
    ranked,
    register,
    slide_quota,
)


@register
class DiversityStrategy(Strategy):
    """Take the ``pool_factor * budget`` most uncertain candidates, then pick greedily so that
    each new proposal is the farthest (in the network's feature space) from those already picked
    (k-center greedy, Sener & Savarese 2018), starting from the most uncertain one.

    Constraints: no two proposals overlap or touch (they stay ``gap`` px apart, so annotators
    never see one structure split across two regions), and at most ceil(budget / slides)
    proposals per slide while other slides still have room, so a round spreads over slides.
    Candidates without features fall back to their box centres (slides kept far apart).
    """

    name = "diversity"
    measure = "bald"

    def __init__(
        self,
        routing: RoutingPolicy | None = None,
        *,
        measure: str = "bald",
        pool_factor: float = 4.0,
        gap: float = 0.0,
    ) -> None:
        super().__init__(routing)
        self.measure = measure
        self.pool_factor = pool_factor
        self.gap = gap

    def choose(
        self,
        candidates: list[Candidate],
        scores: np.ndarray,
        free: np.ndarray,
        budget: int,
        rng: np.random.Generator,
    ) -> list[int]:
        if budget <= 0:
            return []
        pool = free[ranked(scores[free], rng)][: max(budget, int(self.pool_factor * budget))]
        feats = _features([candidates[i] for i in pool])
        boxes = np.array([candidates[i].box for i in pool], dtype=np.float64)
        slide_ids = [candidates[i].slide_id for i in pool]
        _, slide_of = np.unique(np.array([str(s) for s in slide_ids]), return_inverse=True)
        n_slides = int(slide_of.max()) + 1
        per_slide = np.zeros(n_slides, dtype=np.int64)
        quota: float = slide_quota(budget, n_slides)
        blocked = np.zeros(len(pool), dtype=bool)
        dist = np.full(len(pool), np.inf)
        picked: list[int] = []
        while len(picked) < budget:
            open_ = ~blocked & (per_slide[slide_of] < quota)
            if not open_.any():
                if quota == np.inf or not (~blocked).any():
                    break
                quota = np.inf  # every slide with room is full: let the rest take the remainder
                continue
            # First pick: most uncertain (pool is in score order, so the first open index);
            # later picks: farthest from the picked set, ties to the more uncertain.
            j = int(np.flatnonzero(open_)[0]) if not picked else _farthest(dist, open_)
            picked.append(j)
            per_slide[slide_of[j]] += 1
            same = slide_of == slide_of[j]
            blocked |= same & boxes_conflict(boxes, tuple(boxes[j]), self.gap)
            dist = np.minimum(dist, np.linalg.norm(feats - feats[j], axis=1))
        return [int(pool[j]) for j in picked]


def _farthest(dist: np.ndarray, open_: np.ndarray) -> int:
    # argmax returns the first maximum: the pool is score-ordered, so ties go to higher score.
    return int(np.argmax(np.where(open_, dist, -np.inf)))


def _features(cands: list[Candidate]) -> np.ndarray:
    """(N, E) L2-normalised features; box centres (plus a per-slide offset) when any is missing."""
    if all(c.features is not None for c in cands):
        f = np.stack([np.asarray(c.features, dtype=np.float64).ravel() for c in cands])
        norm = np.linalg.norm(f, axis=1, keepdims=True)
        return f / np.where(norm > 0, norm, 1.0)
    centres = np.array([[(c.box[0] + c.box[2]) / 2, (c.box[1] + c.box[3]) / 2] for c in cands])
    _, slide = np.unique(np.array([str(c.slide_id) for c in cands]), return_inverse=True)
    far = 10.0 * (np.ptp(centres) + 1.0) if len(cands) else 1.0
    return np.column_stack([centres, slide * far])
