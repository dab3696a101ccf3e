"""Pure parts of the campaign simulator: its scores and how a simulated person draws."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Point, box, shape

from learning.simulation.drawing import draw_shapes
from learning.simulation.metrics import (
    area_to_reach,
    balanced_accuracy,
    class_mean_dice,
    dice_from_counts,
    spearman,
)
from learning.simulation.profiles import SCALES, Person, make_people, scale_with

# [true][said] pixel counts: background, tissue, gland.
COUNTS = np.array([[10, 2, 0], [0, 5, 0], [0, 1, 5]])


def test_micro_dice_pools_the_foreground_classes() -> None:
    # 2 * (5 + 5) / ((5 + 6) + (8 + 5)) = 20 / 24
    assert dice_from_counts(COUNTS) == pytest.approx(20 / 24)


def test_class_mean_dice_weighs_each_class_alike() -> None:
    # tissue 2*5/(5+8), gland 2*5/(6+5)
    assert class_mean_dice(COUNTS) == pytest.approx((10 / 13 + 10 / 11) / 2)


def test_balanced_accuracy_is_foreground_against_background() -> None:
    # sensitivity (5 + 0 + 1 + 5) / 11, specificity 10 / 12
    assert balanced_accuracy(COUNTS) == pytest.approx((11 / 11 + 10 / 12) / 2)


def test_dice_of_nothing_against_nothing_is_not_a_number() -> None:
    assert np.isnan(dice_from_counts(np.array([[4, 0], [0, 0]])))


def test_area_to_reach_interpolates_between_rounds_and_says_never() -> None:
    assert area_to_reach([1, 2, 3], [0.2, 0.5, 0.9], 0.7) == pytest.approx(2.5)
    assert area_to_reach([1, 2], [0.8, 0.9], 0.7) == 1
    assert area_to_reach([1, 2], [0.1, 0.2], 0.7) is None


def test_spearman_matches_a_hand_ranking() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert np.isnan(spearman([1, 2], [1, 2]))


def _person(**kw: object) -> Person:
    base = dict(
        username="p",
        role="student",
        kind="careful",
        sensitivity={"tissue": 1.0, "gland": 1.0},
        false_positive={"tissue": 0.0, "gland": 0.0},
        jitter=0.0,
        overdraw=0.0,
        miss_small=0.0,
        small_area=0.0,
        wrong_class=0.0,
    )
    base.update(kw)
    return Person(**base)


TRUTH = [("tissue", box(0, 0, 300, 300)), ("gland", Point(100, 100).buffer(30))]
REGION = (50, 50, 200, 200)


def test_a_flawless_hand_draws_the_truth_clipped_to_the_region() -> None:
    drawn = draw_shapes(TRUTH, REGION, _person(), ["tissue", "gland"], np.random.default_rng(0))
    assert [name for name, _ in drawn] == ["tissue", "gland"]
    tissue = shape(drawn[0][1])
    assert tissue.symmetric_difference(box(50, 50, 250, 250)).area == pytest.approx(0, abs=1e-6)
    assert shape(drawn[1][1]).area == pytest.approx(Point(100, 100).buffer(30).area, rel=1e-6)


def test_a_blind_hand_draws_nothing_and_noise_stays_inside_the_region() -> None:
    blind = _person(sensitivity={"tissue": 0.0, "gland": 0.0})
    assert draw_shapes(TRUTH, REGION, blind, ["tissue", "gland"], np.random.default_rng(0)) == []
    sloppy = _person(jitter=8.0, overdraw=10.0, false_positive={"tissue": 1.0, "gland": 1.0})
    frame = box(50, 50, 250, 250).buffer(1e-6)
    for seed in range(5):
        drawn = draw_shapes(TRUTH, REGION, sloppy, ["tissue", "gland"], np.random.default_rng(seed))
        assert drawn and all(frame.contains(shape(g)) for _, g in drawn)


def test_people_are_seeded_and_the_crowd_keeps_a_careful_student() -> None:
    a = make_people(["tissue"], SCALES["ci"], seed=3)
    assert a == make_people(["tissue"], SCALES["ci"], seed=3)
    kinds = [p.kind for p in a[0]]
    assert kinds.count("careless") == 1 and kinds.count("adversarial") == 1
    with pytest.raises(ValueError, match="careful"):
        scale_with(SCALES["ci"], students=2)


def test_truth_from_a_label_mask_gives_the_mask_back(tmp_path: object) -> None:
    import tifffile

    from learning.simulation.truth import from_mask

    mask = np.zeros((64, 96), dtype=np.uint8)
    mask[8:40, 10:50] = 1
    mask[20:30, 60:90] = 3
    tifffile.imwrite(tmp_path / "mask.tiff", mask)
    truth = from_mask(tmp_path / "mask.tiff")
    assert truth.classes == ["class1", "class3"]
    again = truth.mask((0.0, 0.0), (64, 96), 1.0)
    expected = np.select([mask == 1, mask == 3], [1, 2], 0)
    assert np.array_equal(again, expected)


def test_truth_from_geojson_keeps_the_file_class_order(tmp_path: object) -> None:
    import json

    from learning.simulation.truth import from_annotation_file

    def feature(name: str, ring: list[list[float]]) -> dict:
        return {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"classification": {"name": name}},
        }

    square = [[0, 0], [40, 0], [40, 40], [0, 40], [0, 0]]
    inner = [[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]
    doc = {
        "type": "FeatureCollection",
        "features": [feature("stroma", square), feature("tumour", inner)],
    }
    (tmp_path / "a.geojson").write_text(json.dumps(doc))
    truth = from_annotation_file(tmp_path / "a.geojson")
    assert truth.classes == ["stroma", "tumour"]
    grid = truth.mask((0.0, 0.0), (4, 4), 10.0)
    assert grid[1, 1] == 2 and grid[0, 0] == 1 and grid[3, 3] == 1
    assert [n for n, _ in truth.shapes_in(100, 100, 10, 10)] == []
