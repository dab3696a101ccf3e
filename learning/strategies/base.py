"""Selection strategy interface: candidates in; proposals and routing decisions out (pure).

Pure module: numpy, shapely and the standard library only.

A *candidate* is a scored tile of a slide (level-0 pixel box). A strategy picks at most
``budget`` of them as the next round's regions, never one that overlaps labelled area, and may
instead *route* a candidate whose area annotators contested and the model still finds uncertain:
back for more annotators, or to an expert. Routing and proposing draw on the same budget (both
cost annotation effort), routing first, most uncertain first.

Scoring (GPU, per model version) is kept apart from selection (cheap, at request time): a
strategy only reads ``Candidate.score`` / ``Candidate.scores`` and ``Candidate.features``.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

import numpy as np
import shapely

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
SlideId = str | int
Labelled = Mapping[SlideId, Sequence[Box | shapely.Geometry]]


@dataclass(frozen=True, eq=False)
class Candidate:
    """A scored tile. ``box`` (x0, y0, x1, y1): level-0 px, x1 > x0, y1 > y0.

    ``score``: the scorer's main uncertainty measure (higher = more informative). ``scores``:
    named measures (e.g. "entropy", "bald"); a strategy that asks for one uses it when present,
    else ``score``. ``features``: (E,) embedding for diversity. ``contested``: annotator
    disagreement over this area, bool or in [0, 1] (e.g. 1 - agreement). ``annotators``: how many
    annotators have labelled it. ``class_areas``: predicted area per class (px at scoring scale).
    """

    id: str | int
    slide_id: SlideId
    box: Box
    score: float
    features: np.ndarray | None = None
    contested: bool | float = False
    scores: Mapping[str, float] = field(default_factory=dict)
    annotators: int = 0
    class_areas: Mapping[str | int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"candidate {self.id!r}: empty box {self.box}")

    def measure(self, name: str | None) -> float:
        """The named uncertainty measure if the scorer supplied it, else ``score``."""
        return float(self.scores.get(name, self.score)) if name else float(self.score)


@dataclass(frozen=True)
class Proposal:
    """A new region to annotate; ``rank`` 0 is the strategy's first choice."""

    candidate_id: str | int
    slide_id: SlideId
    box: Box
    score: float
    rank: int
    strategy: str


class Route(StrEnum):
    MORE_ANNOTATORS = "more_annotators"
    EXPERT = "expert"


@dataclass(frozen=True)
class RoutingDecision:
    """Send a contested, still-uncertain area back for more annotators or to an expert."""

    candidate_id: str | int
    slide_id: SlideId
    box: Box
    route: Route
    score: float
    contested: float
    reason: str


@dataclass(frozen=True)
class Selection:
    """A strategy's answer: proposals (ranked) and routing decisions; together <= budget."""

    proposals: list[Proposal]
    routing: list[RoutingDecision]


@dataclass(frozen=True)
class RoutingPolicy:
    """When a contested candidate is routed instead of new area being proposed.

    Contested: ``contested >= contested_threshold`` (True counts as 1). Uncertain: score at or
    above ``uncertain_threshold`` if set, else at or above the ``uncertain_quantile`` of all
    candidates' scores (scores of different measures have different scales). Routed to an
    expert when ``annotators >= k_max`` (the area already had all the annotators it may get) or
    ``contested >= expert_contested``; otherwise back for more annotators. At most
    ceil(``max_fraction`` * budget) decisions, so a round still proposes new area.
    """

    enabled: bool = True
    contested_threshold: float = 0.5
    uncertain_quantile: float = 0.5
    uncertain_threshold: float | None = None
    expert_contested: float | None = None
    k_max: int | None = None
    max_fraction: float = 0.5


class LabelledIndex:
    """Spatial index of labelled area per slide; answers "does this box overlap it?"."""

    def __init__(self, labelled: Labelled) -> None:
        self._trees: dict[SlideId, tuple[shapely.STRtree, np.ndarray]] = {}
        for slide, areas in labelled.items():
            geoms = np.array(
                [a if isinstance(a, shapely.Geometry) else shapely.box(*a) for a in areas],
                dtype=object,
            )
            if len(geoms):
                self._trees[slide] = (shapely.STRtree(geoms), geoms)

    def overlaps(self, slide: SlideId, box: Box) -> bool:
        """True when ``box`` shares positive area with labelled area (touching is fine)."""
        entry = self._trees.get(slide)
        if entry is None:
            return False
        tree, geoms = entry
        g = shapely.box(*box)
        hits = tree.query(g, predicate="intersects")
        if not len(hits):
            return False
        return bool((shapely.area(shapely.intersection(g, geoms[hits])) > 0).any())


def boxes_conflict(a: np.ndarray, b: Box, gap: float) -> np.ndarray:
    """Which boxes of ``a`` (N, 4) come within ``gap`` px of ``b`` (touching counts when gap=0).

    Closed intervals: (0, 0, 10, 10) and (10, 0, 20, 10) share an edge, so they conflict.
    """
    return (
        (a[:, 0] <= b[2] + gap)
        & (b[0] <= a[:, 2] + gap)
        & (a[:, 1] <= b[3] + gap)
        & (b[1] <= a[:, 3] + gap)
    )


def boxes_overlap(a: np.ndarray, b: Box) -> np.ndarray:
    """Which boxes of ``a`` (N, 4) share positive area with ``b`` (touching does not count)."""
    return (a[:, 0] < b[2]) & (b[0] < a[:, 2]) & (a[:, 1] < b[3]) & (b[1] < a[:, 3])


def ranked(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices by descending score; ties broken by a seeded shuffle (deterministic per seed)."""
    shuffle = rng.permutation(len(scores))
    return shuffle[np.argsort(-scores[shuffle], kind="stable")]


class Strategy(ABC):
    """Base class: routing and labelled-area exclusion here; the choice rule in subclasses."""

    name: ClassVar[str]
    measure: ClassVar[str | None] = None  # which Candidate.scores entry ranks candidates
    routes: ClassVar[bool] = True  # whether model uncertainty may route contested candidates

    def __init__(self, routing: RoutingPolicy | None = None) -> None:
        self.routing = routing or RoutingPolicy()

    def select(
        self,
        candidates: Sequence[Candidate],
        labelled: Labelled,
        budget: int,
        rng: np.random.Generator,
    ) -> Selection:
        """Choose at most ``budget`` proposals and routing decisions from ``candidates``.

        ``labelled``: per slide, boxes (x0, y0, x1, y1) or shapely geometries (level-0 px)
        already labelled or assigned; no proposal overlaps them.
        """
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        cands = list(candidates)
        scores = np.array([c.measure(self.measure) for c in cands], dtype=np.float64)
        routing = self._route(cands, scores, budget) if self.routes else []
        routed = {d.candidate_id for d in routing}
        index = LabelledIndex(labelled)
        free = np.array(
            [
                i
                for i, c in enumerate(cands)
                if c.id not in routed and not index.overlaps(c.slide_id, c.box)
            ],
            dtype=np.int64,
        )
        chosen = self.choose(cands, scores, free, budget - len(routing), rng) if len(free) else []
        proposals = [
            Proposal(cands[i].id, cands[i].slide_id, cands[i].box, float(scores[i]), r, self.name)
            for r, i in enumerate(chosen)
        ]
        logger.debug("%s: %d proposals, %d routed", self.name, len(proposals), len(routing))
        return Selection(proposals, routing)

    @abstractmethod
    def choose(
        self,
        candidates: list[Candidate],
        scores: np.ndarray,
        free: np.ndarray,
        budget: int,
        rng: np.random.Generator,
    ) -> list[int]:
        """Pick at most ``budget`` indices among ``free`` (unlabelled, unrouted), in rank order."""

    def _route(
        self, cands: list[Candidate], scores: np.ndarray, budget: int
    ) -> list[RoutingDecision]:
        policy = self.routing
        if not policy.enabled or not cands or budget == 0:
            return []
        threshold = policy.uncertain_threshold
        if threshold is None:
            threshold = float(np.quantile(scores, policy.uncertain_quantile))
        contested = np.array([float(c.contested) for c in cands])
        hit = np.flatnonzero((contested >= policy.contested_threshold) & (scores >= threshold))
        cap = min(budget, math.ceil(budget * policy.max_fraction))
        hit = hit[np.argsort(-scores[hit], kind="stable")][:cap]
        decisions = []
        for i in hit:
            c = cands[i]
            expert = (policy.k_max is not None and c.annotators >= policy.k_max) or (
                policy.expert_contested is not None and contested[i] >= policy.expert_contested
            )
            route = Route.EXPERT if expert else Route.MORE_ANNOTATORS
            reason = (
                f"annotators disagreed ({contested[i]:.2f}) and the model is uncertain "
                f"({scores[i]:.3g} >= {threshold:.3g})"
            )
            score = float(scores[i])
            decisions.append(
                RoutingDecision(c.id, c.slide_id, c.box, route, score, float(contested[i]), reason)
            )
        return decisions


def greedy_non_overlapping(
    candidates: list[Candidate], order: np.ndarray, budget: int
) -> list[int]:
    """Walk ``order`` and keep candidates that share no area with one already kept."""
    kept: list[int] = []
    boxes = np.array([c.box for c in candidates], dtype=np.float64).reshape(-1, 4)
    slides = np.array([c.slide_id for c in candidates], dtype=object)
    blocked = np.zeros(len(candidates), dtype=bool)
    for i in order:
        if len(kept) >= budget:
            break
        if blocked[i]:
            continue
        kept.append(int(i))
        blocked |= (slides == slides[i]) & boxes_overlap(boxes, candidates[i].box)
    return kept


def slide_quota(budget: int, slides: int) -> int:
    """Per-slide cap that spreads ``budget`` proposals over ``slides`` slides."""
    return max(1, math.ceil(budget / max(1, slides)))


_REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy available to ``get_strategy`` under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"strategy name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls
