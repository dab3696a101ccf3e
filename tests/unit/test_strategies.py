"""Selection strategies: seeded, never re-proposing labelled area, diverse, routing contested."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.strategies import (
    Candidate,
    Route,
    RoutingPolicy,
    UnknownStrategyError,
    available_strategies,
    get_strategy,
)

ALL = ["random", "entropy", "bald", "diversity"]


def _grid(slides: int = 2, side: int = 6, tile: int = 100, seed: int = 0) -> list[Candidate]:
    """Adjacent (edge-sharing) tiles on each slide, random scores and 4-d features."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(slides):
        for i in range(side):
            for j in range(side):
                box = (j * tile, i * tile, (j + 1) * tile, (i + 1) * tile)
                e, b = rng.random(2)
                out.append(
                    Candidate(
                        f"s{s}-{i}-{j}",
                        f"slide{s}",
                        box,
                        float(b),
                        features=rng.normal(size=4),
                        scores={"entropy": float(e), "bald": float(b)},
                    )
                )
    return out


def _ids(selection: object) -> list[object]:
    return [p.candidate_id for p in selection.proposals]


def test_registry_always_has_random_and_the_uncertainty_strategies() -> None:
    assert set(ALL) <= set(available_strategies())


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownStrategyError) as info:
        get_strategy("coreset-xl")
    message = str(info.value)
    assert "coreset-xl" in message
    for name in ALL:
        assert name in message


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_selection(name: str) -> None:
    cands = _grid()
    a = get_strategy(name).select(cands, {}, 8, np.random.default_rng(42))
    b = get_strategy(name).select(cands, {}, 8, np.random.default_rng(42))
    assert _ids(a) == _ids(b) and len(_ids(a)) == 8


def test_random_depends_on_the_seed() -> None:
    cands = _grid()
    picks = {tuple(_ids(get_strategy("random").select(cands, {}, 5, np.random.default_rng(s))))
             for s in range(5)}  # fmt: skip
    assert len(picks) > 1


def test_ties_are_broken_by_the_seed_not_by_input_order() -> None:
    cands = [Candidate(i, "a", (i * 10, 0, i * 10 + 5, 5), 0.5) for i in range(30)]
    picks = {tuple(_ids(get_strategy("bald").select(cands, {}, 3, np.random.default_rng(s))))
             for s in range(6)}  # fmt: skip
    assert len(picks) > 1


def test_entropy_and_bald_rank_by_their_own_measure() -> None:
    cands = [
        Candidate("a", "s", (0, 0, 10, 10), 0.0, scores={"entropy": 0.9, "bald": 0.1}),
        Candidate("b", "s", (20, 0, 30, 10), 0.0, scores={"entropy": 0.1, "bald": 0.9}),
    ]
    rng = np.random.default_rng(0)
    assert _ids(get_strategy("entropy").select(cands, {}, 1, rng)) == ["a"]
    assert _ids(get_strategy("bald").select(cands, {}, 1, rng)) == ["b"]


@pytest.mark.parametrize("name", ALL)
def test_labelled_area_is_never_re_proposed(name: str) -> None:
    cands = _grid(side=5)
    labelled = {
        "slide0": [(0, 0, 250, 250), shapely.Polygon([(300, 300), (500, 300), (500, 420)])],
        "slide1": [shapely.box(100, 0, 200, 500)],
    }
    sel = get_strategy(name).select(cands, labelled, 50, np.random.default_rng(0))
    assert sel.proposals  # it still proposes the rest
    for p in sel.proposals:
        for area in labelled.get(p.slide_id, []):
            geom = area if isinstance(area, shapely.Geometry) else shapely.box(*area)
            assert shapely.box(*p.box).intersection(geom).area == 0, (p, area)
    # Only overlap excludes: tiles that merely touch labelled area (e.g. right of the slide1
    # strip) stay available, so with a large budget the ranking strategies take all the rest.
    free = {
        c.id
        for c in cands
        if all(
            shapely.box(*c.box)
            .intersection(a if isinstance(a, shapely.Geometry) else shapely.box(*a))
            .area
            == 0
            for a in labelled[c.slide_id]
        )
    }
    assert "s1-0-2" in free  # (200, 0, 300, 100) touches the strip x 100..200
    if name != "diversity":
        assert set(_ids(sel)) == free


def _assert_apart(sel: object) -> None:
    props = sel.proposals
    for i, a in enumerate(props):
        for b in props[i + 1 :]:
            if a.slide_id == b.slide_id:
                assert not shapely.box(*a.box).intersects(shapely.box(*b.box)), (a, b)


def test_diversity_never_proposes_touching_tiles_on_a_grid() -> None:
    cands = _grid(side=6)  # every tile shares edges/corners with its neighbours
    sel = get_strategy("diversity", pool_factor=100).select(cands, {}, 18, np.random.default_rng(0))
    _assert_apart(sel)
    # a 6x6 grid holds at most 9 pairwise non-touching tiles per slide
    assert 0 < len(sel.proposals) <= 18


@settings(max_examples=40, deadline=None)
@given(
    boxes=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 400),
            st.integers(0, 400),
            st.integers(1, 120),
            st.integers(1, 120),
        ),
        min_size=1,
        max_size=60,
    ),
    budget=st.integers(0, 25),
    seed=st.integers(0, 2**16),
)
def test_diversity_proposals_never_overlap_or_touch_and_respect_budget(
    boxes: list[tuple[int, int, int, int, int]], budget: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    cands = [
        Candidate(i, f"s{s}", (x, y, x + w, y + h), float(rng.random()), features=rng.random(3))
        for i, (s, x, y, w, h) in enumerate(boxes)
    ]
    labelled = {"s0": [(100, 100, 200, 200)]}
    sel = get_strategy("diversity").select(cands, labelled, budget, np.random.default_rng(seed))
    assert len(sel.proposals) + len(sel.routing) <= budget
    _assert_apart(sel)
    for p in sel.proposals:
        if p.slide_id == "s0":
            assert shapely.box(*p.box).intersection(shapely.box(100, 100, 200, 200)).area == 0


def test_diversity_spreads_over_slides_where_plain_uncertainty_does_not() -> None:
    rng = np.random.default_rng(0)
    cands = []
    for s, base in (("hot", 0.9), ("cold", 0.1)):  # every "hot" tile beats every "cold" one
        for i in range(20):
            box = (i * 200, 0, i * 200 + 100, 100)
            score = base + 0.05 * rng.random()
            cands.append(Candidate(f"{s}{i}", s, box, score, features=rng.normal(size=3)))
    bald = get_strategy("bald").select(cands, {}, 6, np.random.default_rng(0))
    assert {p.slide_id for p in bald.proposals} == {"hot"}
    div = get_strategy("diversity", pool_factor=10).select(cands, {}, 6, np.random.default_rng(0))
    per_slide = [p.slide_id for p in div.proposals]
    assert per_slide.count("hot") == 3 and per_slide.count("cold") == 3


def test_diversity_k_center_covers_feature_clusters() -> None:
    # Ten very uncertain tiles that all look alike, five slightly less uncertain that differ.
    cands = [
        Candidate(f"same{i}", "s", (i * 200, 0, i * 200 + 100, 100), 0.9 + 0.001 * i,
                  features=np.array([1.0, 0.0, 0.0]) + 0.001 * i)
        for i in range(10)
    ] + [
        Candidate(f"odd{i}", "s", (i * 200, 500, i * 200 + 100, 600), 0.8,
                  features=np.eye(3)[1 + i % 2] * (1 + i))
        for i in range(5)
    ]  # fmt: skip
    bald = _ids(get_strategy("bald").select(cands, {}, 3, np.random.default_rng(0)))
    assert all(i.startswith("same") for i in bald)
    div = _ids(get_strategy("diversity").select(cands, {}, 3, np.random.default_rng(0)))
    assert div[0] == "same9"  # starts from the most uncertain
    assert sum(i.startswith("odd") for i in div) == 2  # then covers the other directions


def test_diversity_without_features_spreads_in_space() -> None:
    cands = [Candidate(i, "s", (i * 100, 0, i * 100 + 50, 50), 1.0 - 0.01 * i) for i in range(20)]
    strategy = get_strategy("diversity", pool_factor=10)  # pool: the 20 most uncertain
    picks = strategy.select(cands, {}, 2, np.random.default_rng(0)).proposals
    assert [p.candidate_id for p in picks] == [0, 19]  # most uncertain, then the farthest


def _contested_set() -> list[Candidate]:
    return [
        Candidate("disputed-unsure", "s", (0, 0, 100, 100), 0.9, contested=True),
        Candidate("disputed-sure", "s", (200, 0, 300, 100), 0.05, contested=0.9),
        Candidate("agreed-unsure", "s", (400, 0, 500, 100), 0.8),
        Candidate("fresh", "s", (600, 0, 700, 100), 0.3),
        Candidate("disputed-often", "s", (800, 0, 900, 100), 0.95, contested=0.7, annotators=5),
    ]


@pytest.mark.parametrize("name", ["entropy", "bald", "diversity"])
def test_contested_and_uncertain_area_is_routed_instead_of_proposed(name: str) -> None:
    cands = _contested_set()
    labelled = {"s": [(0, 0, 100, 100), (200, 0, 300, 100), (800, 0, 900, 100)]}
    strategy = get_strategy(name, routing=RoutingPolicy(k_max=5, max_fraction=1.0))
    sel = strategy.select(cands, labelled, 4, np.random.default_rng(0))
    routes = {d.candidate_id: d.route for d in sel.routing}
    # most uncertain first; the one that already had k_max annotators goes to an expert
    assert [d.candidate_id for d in sel.routing] == ["disputed-often", "disputed-unsure"]
    assert routes == {"disputed-often": Route.EXPERT, "disputed-unsure": Route.MORE_ANNOTATORS}
    assert "disputed-sure" not in routes  # the model is confident there: no more effort
    # the rest of the budget proposes new, unlabelled area
    assert set(_ids(sel)) == {"agreed-unsure", "fresh"}
    assert "disagreed" in sel.routing[0].reason


def test_routing_takes_at_most_its_share_of_the_budget() -> None:
    cands = [Candidate(i, "s", (i * 200, 0, i * 200 + 100, 100), 0.9, contested=True)
             for i in range(10)] + [Candidate("new", "s", (0, 500, 100, 600), 0.1)]  # fmt: skip
    sel = get_strategy("bald").select(cands, {}, 4, np.random.default_rng(0))
    assert len(sel.routing) == 2  # ceil(4 * 0.5)
    assert len(sel.proposals) == 2
    off = get_strategy("bald", routing=RoutingPolicy(enabled=False))
    assert off.select(cands, {}, 4, np.random.default_rng(0)).routing == []


def test_random_baseline_never_routes() -> None:
    sel = get_strategy("random").select(_contested_set(), {}, 5, np.random.default_rng(0))
    assert sel.routing == [] and len(sel.proposals) == 5


def test_zero_budget_and_empty_input() -> None:
    for name in ALL:
        assert get_strategy(name).select(_grid(), {}, 0, np.random.default_rng(0)).proposals == []
        empty = get_strategy(name).select([], {}, 3, np.random.default_rng(0))
        assert empty.proposals == [] and empty.routing == []
    with pytest.raises(ValueError, match="budget"):
        get_strategy("random").select([], {}, -1, np.random.default_rng(0))
