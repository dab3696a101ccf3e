"""slides.tiling: crop planning and grids, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from slides.tiling import (
    Box,
    best_level,
    clip_box,
    downsample_for_mpp,
    grid_boxes,
    output_size,
    plan_crop,
    source_pixels,
)


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


def test_the_audits_box_past_the_edge_reads_only_the_slide():
    # Issue 14: a 12000 x 12000 box at 2000 level-0 px per output px (mpp 1000 on a 0.5 slide),
    # on the single-level 2220 x 2967 CMU slide. Unclipped: 9 reads of 4000 x 4000 = 144 Mpx.
    # Clipped: output pixels 0 and 1 of each axis cover [0, 2000) and [2000, 4000), which meet
    # the slide; pixel 2 starts at 4000, past it. So one piece draws the output's top-left 2 x 2
    # pixels from a 4000 x 4000 white canvas onto which only the slide itself is read.
    box, slide = Box(0, 0, 12_000, 12_000), Box(0, 0, 2220, 2967)
    assert source_pixels(plan_crop(box, 2000.0, [1.0])) == 12_000 * 12_000
    pieces = plan_crop(box, 2000.0, [1.0], bounds=slide)
    assert [
        (p.box, p.read_box, p.read_size, p.read_offset, p.canvas_size, p.out_offset, p.out_size)
        for p in pieces
    ] == [(Box(0, 0, 4000, 4000), slide, (2220, 2967), (0, 0), (4000, 4000), (0, 0), (2, 2))]
    assert source_pixels(pieces) == 2220 * 2967


@pytest.mark.parametrize("downsample", [1.0, 3.0, 7.0, 16.0])
def test_clipped_pieces_read_only_the_slide_and_keep_the_unclipped_grid(downsample):
    box, bounds = Box(1000, 500, 6000, 5000), Box(0, 0, 4000, 3000)
    levels = [1.0, 4.0]
    pieces = plan_crop(box, downsample, levels, max_read_side=512, bounds=bounds)
    out_w, out_h = output_size(box, downsample)

    def grid(o: int, origin: int, length: int, n: int) -> int:  # output edge o at level 0
        return origin + round(o * length / n)

    coverage = np.zeros((out_h, out_w), dtype=np.int32)
    for piece in pieces:
        read = piece.read_box or piece.box
        assert clip_box(read, bounds) == read
        ox, oy = piece.out_offset
        ow, oh = piece.out_size
        coverage[oy : oy + oh, ox : ox + ow] += 1
        # The piece draws whole output pixels of the unclipped grid: same scale, no shift.
        x0, x1 = grid(ox, box.x, box.width, out_w), grid(ox + ow, box.x, box.width, out_w)
        y0, y1 = grid(oy, box.y, box.height, out_h), grid(oy + oh, box.y, box.height, out_h)
        assert piece.box == Box(x0, y0, x1 - x0, y1 - y0)
    assert coverage.max() == 1
    # Exactly the output pixels whose span starts on the slide (x < 4000, y < 3000) are drawn.
    inside_w = sum(grid(o, box.x, box.width, out_w) < bounds.x1 for o in range(out_w))
    inside_h = sum(grid(o, box.y, box.height, out_h) < bounds.y1 for o in range(out_h))
    assert coverage[:inside_h, :inside_w].min() == 1
    assert coverage.sum() == inside_w * inside_h
    # What is read partitions the box's part on the slide: no level-0 pixel twice, none off it.
    assert sum((p.read_box or p.box).width * (p.read_box or p.box).height for p in pieces) == (
        3000 * 2500
    )


def test_a_box_wholly_off_the_slide_plans_no_read():
    assert plan_crop(Box(5000, 0, 100, 100), 1.0, [1.0], bounds=Box(0, 0, 4000, 3000)) == []
    assert clip_box(Box(5000, 0, 100, 100), Box(0, 0, 4000, 3000)) is None
