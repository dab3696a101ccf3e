"""Active-learning selection strategies, registered by name (pure: numpy, shapely, stdlib).

``get_strategy("bald").select(candidates, labelled, budget, rng)``; see ``base`` for the types.
"""

from __future__ import annotations

from typing import Any

from learning.strategies import bald, diversity, entropy, random  # noqa: F401  (registers them)
from learning.strategies.base import (
    _REGISTRY,
    Candidate,
    Proposal,
    Route,
    RoutingDecision,
    RoutingPolicy,
    Selection,
    Strategy,
)

__all__ = [
    "Candidate",
    "Proposal",
    "Route",
    "RoutingDecision",
    "RoutingPolicy",
    "Selection",
    "Strategy",
    "UnknownStrategyError",
    "available_strategies",
    "get_strategy",
]


class UnknownStrategyError(LookupError):
    """No strategy is registered under the requested name."""


def available_strategies() -> list[str]:
    """Registered strategy names, sorted."""
    return sorted(_REGISTRY)


def get_strategy(name: str, **options: Any) -> Strategy:
    """An instance of the strategy registered as ``name``, built with ``options``.

    Raises :class:`UnknownStrategyError` listing the known names.
    """
    try:
        cls = _REGISTRY[name]
    except KeyError:
        known = ", ".join(available_strategies())
        message = f"unknown strategy {name!r}; known strategies: {known}"
        raise UnknownStrategyError(message) from None
    return cls(**options)
