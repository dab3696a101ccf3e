"""Highest predictive entropy first (pure)."""

from __future__ import annotations

import numpy as np

from learning.strategies.base import Candidate, Strategy, greedy_non_overlapping, ranked, register


@register
class EntropyStrategy(Strategy):
    """Rank by predictive entropy (``scores["entropy"]``, else ``score``); no two overlapping.

    Entropy counts both model and data (aleatoric) uncertainty, so it also favours inherently
    ambiguous boundaries; BALD isolates what more labels could teach the model.
    """

    name = "entropy"
    measure = "entropy"

    def choose(
        self,
        candidates: list[Candidate],
        scores: np.ndarray,
        free: np.ndarray,
        budget: int,
        rng: np.random.Generator,
    ) -> list[int]:
        order = free[ranked(scores[free], rng)]
        return greedy_non_overlapping(candidates, order, budget)
