"""slides.tiling: crop planning and grids, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from slides.tiling import Box, best_level, downsample_for_mpp, grid_boxes, output_size, plan_crop


def test_best_level_is_the_coarsest_not_past_the_downsample():
    downsamples = [1.0, 4.0, 16.0]
    assert best_level(downsamples, 1.0) == 0
    assert best_level(downsamples, 3.9) == 0
    assert best_level(downsamples, 4.0) == 1
    assert best_level(downsamples, 15.0) == 1
    assert best_level(downsamples, 100.0) == 2


def test_downsample_for_mpp():
    assert downsample_for_mpp(0.25, 1.0) == 4.0
    for bad in [(0, 1), (1, -1), (float("inf"), 1), (float("nan"), 1)]:
        with pytest.raises(ValueError):
            downsample_for_mpp(*bad)


def test_output_size_rounds_and_never_reaches_zero():
    assert output_size(Box(0, 0, 400, 200), 4.0) == (100, 50)
    assert output_size(Box(0, 0, 3, 3), 10.0) == (1, 1)


@pytest.mark.parametrize("downsample", [1.0, 2.5, 4.0, 7.3])
def test_pieces_cover_the_output_exactly_once(downsample):
    box = Box(100, 50, 10_000, 7_000)
    pieces = plan_crop(box, downsample, [1.0, 4.0, 16.0], max_read_side=1024)
    out_w, out_h = output_size(box, downsample)
    coverage = np.zeros((out_h, out_w), dtype=np.int32)
    for piece in pieces:
        ox, oy = piece.out_offset
        ow, oh = piece.out_size
        coverage[oy : oy + oh, ox : ox + ow] += 1
        assert max(piece.read_size) <= 1024 + 1
        assert box.x <= piece.box.x and piece.box.x1 <= box.x1
    assert coverage.min() == 1 and coverage.max() == 1


def test_single_level_slide_is_read_in_bounded_pieces():
    # 8000x8000 at level 0 to 1000x1000 output with a 4096-px read cap: a piece is at most
    # 4096 / 8 = 512 output px, so each axis splits 512 + 488 output px, read as 4096 + 3904 px.
    pieces = plan_crop(Box(0, 0, 8000, 8000), 8.0, [1.0], max_read_side=4096)
    assert len(pieces) == 4
    assert sorted({p.read_size for p in pieces}) == [
        (3904, 3904),
        (3904, 4096),
        (4096, 3904),
        (4096, 4096),
    ]
    assert sorted({p.out_size for p in pieces}) == [(488, 488), (488, 512), (512, 488), (512, 512)]


def test_grid_boxes_drop_or_keep_partial_edges():
    full = list(grid_boxes(Box(0, 0, 500, 300), 200))
    assert [(b.x, b.y) for b in full] == [(0, 0), (200, 0)]
    partial = list(grid_boxes(Box(0, 0, 500, 300), 200, keep_partial=True))
    assert len(partial) == 6 and partial[-1] == Box(400, 200, 100, 100)
    strided = list(grid_boxes(Box(0, 0, 400, 200), 200, stride=100))
    assert [(b.x, b.y) for b in strided] == [(0, 0), (100, 0), (200, 0)]


def test_box_intersection_excludes_touching_edges():
    assert Box(0, 0, 10, 10).intersects(Box(5, 5, 10, 10))
    assert not Box(0, 0, 10, 10).intersects(Box(10, 0, 5, 5))
