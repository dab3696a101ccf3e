"""Rasterising level-0 polygons on a region grid, and outlining masks back (hand cases)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from annotation.rasterize import grid_shape, mask_to_geojson, rasterize_shapes

REPO = Path(__file__).resolve().parents[2]


def _square(x: float, y: float, side: float) -> list[list[float]]:
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]


def _poly(*rings: list[list[float]]) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def test_square_covers_the_pixels_whose_centres_it_contains():
    # Level-0 square [2, 6) x [1, 4) at downsample 1: columns 2..5, rows 1..3 -> 4 x 3 = 12.
    ring = [[2, 1], [6, 1], [6, 4], [2, 4], [2, 1]]
    mask = rasterize_shapes([(1, _poly(ring))], origin=(0, 0), shape=(6, 8), downsample=1.0)
    expected = np.zeros((6, 8), np.int16)
    expected[1:4, 2:6] = 1
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.int16


def test_polygon_with_a_hole_leaves_the_hole_unlabelled():
    # An 8 x 8 shell with a 4 x 4 hole: 64 - 16 = 48 pixels.
    shape = _poly(_square(0, 0, 8), _square(2, 2, 4))
    mask = rasterize_shapes([(1, shape)], origin=(0, 0), shape=(10, 10), downsample=1.0)
    assert mask.sum() == 48
    assert (mask[2:6, 2:6] == 0).all()
    assert (mask[0:2, 0:8] == 1).all() and (mask[6:8, 0:8] == 1).all()
    assert (mask[8:, :] == 0).all() and (mask[:, 8:] == 0).all()


def test_an_island_inside_a_hole_of_another_shape_keeps_its_class():
    ring = _poly(_square(0, 0, 8), _square(2, 2, 4))
    island = _poly(_square(3, 3, 2))
    mask = rasterize_shapes([(1, ring), (2, island)], origin=(0, 0), shape=(8, 8), downsample=1.0)
    assert (mask == 1).sum() == 48 and (mask == 2).sum() == 4 and (mask == 0).sum() == 12


def test_downsample_and_origin_scale_the_polygon():
    # Level-0 square [100, 140) x [200, 220) on a grid at (100, 200) with downsample 4:
    # columns 0..9 (10) and rows 0..4 (5): a quarter of the side each way.
    shape = _poly([[100, 200], [140, 200], [140, 220], [100, 220], [100, 200]])
    mask = rasterize_shapes([(3, shape)], origin=(100, 200), shape=(8, 12), downsample=4.0)
    expected = np.zeros((8, 12), np.int16)
    expected[0:5, 0:10] = 3
    np.testing.assert_array_equal(mask, expected)
    # Same shape at downsample 2: 20 x 10 pixels, i.e. four times the area.
    finer = rasterize_shapes([(3, shape)], origin=(100, 200), shape=(16, 24), downsample=2.0)
    assert (finer == 3).sum() == 4 * (mask == 3).sum() == 200


def test_multipolygon_and_later_shapes_win_where_they_overlap():
    multi = {"type": "MultiPolygon", "coordinates": [[_square(0, 0, 2)], [_square(4, 4, 2)]]}
    over = _poly(_square(1, 1, 4))
    mask = rasterize_shapes([(1, multi), (2, over)], origin=(0, 0), shape=(6, 6), downsample=1.0)
    assert (mask == 2).sum() == 16
    assert (mask == 1).sum() == 4 + 4 - 2  # each square loses the corner pixel the overlap took


def test_shapes_outside_the_grid_are_clipped_not_an_error():
    mask = rasterize_shapes(
        [(1, _poly(_square(-5, -5, 7)))], origin=(0, 0), shape=(4, 4), downsample=1.0
    )
    assert mask.sum() == 4  # [0, 2) x [0, 2)


def test_grid_shape_rounds_to_the_working_resolution():
    assert grid_shape(513, 513, 2.004) == (256, 256)
    assert grid_shape(1, 1, 100.0) == (1, 1)
    with pytest.raises(ValueError):
        grid_shape(10, 10, 0.0)


def test_outline_round_trips_through_the_rasteriser_with_holes():
    mask = np.zeros((12, 12), np.int16)
    mask[1:9, 1:9] = 1
    mask[3:6, 3:6] = 0  # a hole
    mask[4, 4] = 2  # an island of another class inside it
    mask[10, 0:5] = 1  # a second part
    outlines = mask_to_geojson(mask, origin=(50, 60), downsample=2.0)
    assert [c for c, _ in outlines] == [1, 2]
    kinds = {c: g["type"] for c, g in outlines}
    assert kinds == {1: "MultiPolygon", 2: "Polygon"}
    back = rasterize_shapes(outlines, origin=(50, 60), shape=(12, 12), downsample=2.0)
    np.testing.assert_array_equal(back, mask)
    # The level-0 outline of class 2 is the one pixel scaled by 2 at the origin offset.
    ring = outlines[1][1]["coordinates"][0]
    xs, ys = {p[0] for p in ring}, {p[1] for p in ring}
    assert xs == {58.0, 60.0} and ys == {68.0, 70.0}


def test_empty_mask_has_no_outlines():
    assert mask_to_geojson(np.zeros((4, 4), np.int16), origin=(0, 0), downsample=1.0) == []


def test_rasterize_and_region_merge_import_without_django():
    script = (
        "import sys\nimport annotation.rasterize, annotation.region_merge\n"
        "assert 'django' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
