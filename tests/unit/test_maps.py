"""Per-tile maps composed over a slide or region box and coloured: small cases by hand."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from learning.maps import (
    TileMap,
    compose,
    fit_canvas,
    hex_rgb,
    natural_side,
    png_bytes,
    prediction_rgba,
    ramp_lut,
    uncertainty_rgba,
)


def test_one_tile_over_the_whole_box_repeats_each_cell_as_a_block():
    tile = TileMap(0, 0, 100, 100, np.array([[1, 2], [3, 4]], dtype=np.uint8))
    values, covered = compose([tile], (0, 0, 100, 100), (4, 4))
    assert values.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    assert covered.all()


def test_pixels_outside_every_tile_are_uncovered_and_zero():
    # Slide 100 x 50 at 4 x 2: the tile covers the left half, pixels of 25 level-0 px.
    tile = TileMap(0, 0, 50, 50, np.array([[7, 8], [9, 10]], dtype=np.uint8))
    values, covered = compose([tile], (0, 0, 100, 50), (4, 2))
    assert values.tolist() == [[7, 8, 0, 0], [9, 10, 0, 0]]
    assert covered.tolist() == [[True, True, False, False], [True, True, False, False]]


def test_a_tile_is_placed_by_its_level0_offset_in_a_box_that_does_not_start_at_zero():
    # Box x 100..200, y 0..100 at 4 x 4 (25 px per pixel); the tile covers x 150..200, y 50..100.
    tile = TileMap(150, 50, 50, 50, np.array([[5]], dtype=np.uint8))
    values, covered = compose([tile], (100, 0, 200, 100), (4, 4))
    assert covered.tolist() == [
        [False, False, False, False],
        [False, False, False, False],
        [False, False, True, True],
        [False, False, True, True],
    ]
    assert values[2:, 2:].tolist() == [[5, 5], [5, 5]]


def test_pixel_centres_pick_the_nearest_cell_when_the_canvas_is_coarser_than_the_map():
    # A 4-cell row over 100 px drawn on 2 pixels: centres at 25 and 75 fall in cells 1 and 3.
    tile = TileMap(0, 0, 100, 100, np.array([[10, 20, 30, 40]] * 4, dtype=np.uint8))
    values, _ = compose([tile], (0, 0, 100, 100), (2, 2))
    assert values.tolist() == [[20, 40], [20, 40]]


def test_a_later_tile_wins_where_two_overlap():
    a = TileMap(0, 0, 60, 20, np.full((2, 2), 1, dtype=np.uint8))
    b = TileMap(40, 0, 60, 20, np.full((2, 2), 2, dtype=np.uint8))
    values, _ = compose([a, b], (0, 0, 100, 20), (5, 1))  # centres 10, 30, 50, 70, 90
    assert values.tolist() == [[1, 1, 2, 2, 2]]


def test_fit_canvas_spans_the_width_and_rounds_the_height_up():
    # 100 x 30 on a 4-px long side: 25 px per canvas pixel, 1.2 rows -> 2, covering 50 px.
    assert fit_canvas(0, 0, 100, 30, 4) == ((4, 2), (0, 0, 100, 50.0))
    # Taller than wide: the height leads, the width is what it rounds to, the box follows it.
    # 30 x 100 at 10: w = round(3.0) = 3 (10 px each), h = 10 -> exactly 100 px.
    assert fit_canvas(5, 7, 30, 100, 10) == ((3, 10), (5, 7, 35, 107.0))
    # Exact fits stay exact.
    assert fit_canvas(0, 0, 2000, 1000, 512) == ((512, 256), (0, 0, 2000, 1000.0))
    with pytest.raises(ValueError):
        fit_canvas(0, 0, 0, 10, 10)


def test_natural_side_gives_one_pixel_per_cell_up_to_the_cap():
    tiles = [TileMap(0, 0, 512, 512, np.zeros((32, 32), dtype=np.uint8))]  # 16 px per cell
    assert natural_side(4096, tiles, cap=2048) == 256
    assert natural_side(100_000, tiles, cap=2048) == 2048


def test_prediction_colours_classes_and_leaves_background_and_gaps_clear():
    values = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    covered = np.array([[True, True, True, False]])
    rgba = prediction_rgba(values, covered, [None, (255, 0, 0), (0, 0, 255)], alpha=100)
    assert rgba.tolist() == [[[0, 0, 0, 0], [255, 0, 0, 100], [0, 0, 255, 100], [0, 0, 0, 0]]]


def test_uncertainty_ramp_runs_from_the_first_stop_to_the_last_linearly():
    lut = ramp_lut()
    assert lut[0].tolist() == [68, 1, 84]
    assert lut[255].tolist() == [253, 231, 37]
    # 51 is 0.8 of the way from stop 0 (at 0) to stop 1 (at 63.75): 68 + 0.8 * (59 - 68) = 60.8.
    assert lut[51].tolist() == [61, 66, 128]  # 1 + 0.8 * 81 = 65.8; 84 + 0.8 * 55 = 128


def test_uncertainty_image_grows_more_opaque_with_entropy_and_is_clear_where_unscored():
    values = np.array([[0, 255, 51, 255]], dtype=np.uint8)
    covered = np.array([[True, True, True, False]])
    rgba = uncertainty_rgba(values, covered, alpha=(40, 200))
    # alpha 40 + 160 * v / 255: 40, 200, 40 + 32 = 72; colour from the ramp (see above).
    assert rgba.tolist() == [
        [[68, 1, 84, 40], [253, 231, 37, 200], [61, 66, 128, 72], [0, 0, 0, 0]]
    ]


def test_hex_colours_parse_long_and_short_forms():
    assert hex_rgb("#e6194b") == (230, 25, 75)
    assert hex_rgb("#f00") == (255, 0, 0)
    with pytest.raises(ValueError):
        hex_rgb("red")


def test_png_round_trips_the_rgba_pixels():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[1, 2] = (10, 20, 30, 40)
    image = Image.open(io.BytesIO(png_bytes(rgba)))
    assert image.mode == "RGBA" and image.size == (3, 2)
    assert np.asarray(image).tolist() == rgba.tolist()
