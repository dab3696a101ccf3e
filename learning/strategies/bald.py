"""Highest BALD (mutual information between label and weights) first (pure)."""

from __future__ import annotations

import numpy as np

from learning.strategies.base import Candidate, Strategy, greedy_non_overlapping, ranked, register


@register
class BaldStrategy(Strategy):
    """Rank by BALD (``scores["bald"]``, else ``score``); no two proposals overlapping.

    BALD is high where MC-dropout samples (or ensemble members) disagree with each other, i.e.
    epistemic uncertainty that new labels can reduce (Houlsby et al. 2011; Gal et al. 2017).
    """

    name = "bald"
    measure = "bald"

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
