"""Random selection: the baseline every other strategy is measured against (pure)."""

from __future__ import annotations

import numpy as np

from learning.strategies.base import Candidate, Strategy, greedy_non_overlapping, register


@register
class RandomStrategy(Strategy):
    """Uniformly random unlabelled candidates (no two overlapping); ignores scores, never routes."""

    name = "random"
    routes = False

    def choose(
        self,
        candidates: list[Candidate],
        scores: np.ndarray,
        free: np.ndarray,
        budget: int,
        rng: np.random.Generator,
    ) -> list[int]:
        return greedy_non_overlapping(candidates, rng.permutation(free), budget)
