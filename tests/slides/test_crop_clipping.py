"""Crops clipped to the slide: only the slide is read, and the image stays on its grid."""

from __future__ import annotations

import numpy as np
import openslide
import pytest

from slides.crops import render_image
from slides.tiling import Box


@pytest.mark.parametrize(
    ("box", "downsample"),
    [(Box(1500, 2500, 2000, 2000), 4.0), (Box(1000, 1000, 3001, 2999), 7.0)],
)
def test_a_box_past_the_edge_reads_only_the_slide_and_keeps_its_pixels(
    slides_dir, monkeypatch, box, downsample
):
    path = str(slides_dir / "cmu-1-small-region.svs")  # one level, 2220 x 2967
    whole = np.asarray(render_image(path, [1.0], box, downsample)).astype(int)
    sizes: list[tuple[int, int]] = []
    real = openslide.OpenSlide.read_region

    def recording(self, location, level, size):  # noqa: ANN001, ANN202 - OpenSlide's signature
        sizes.append(tuple(size))
        return real(self, location, level, size)

    monkeypatch.setattr(openslide.OpenSlide, "read_region", recording)
    clipped = np.asarray(render_image(path, [1.0], box, downsample, (2220, 2967))).astype(int)
    on_slide = (min(box.x1, 2220) - box.x) * (min(box.y1, 2967) - box.y)
    assert sum(w * h for w, h in sizes) == on_slide
    assert clipped.shape == whole.shape
    # Past the edge: white. On the slide: the same grid, so only resampling differs (a grid
    # shifted by a fraction of a pixel, as a naive clip gave, differed by up to 104 levels).
    cols, rows = round((2220 - box.x) / downsample), round((2967 - box.y) / downsample)
    assert (clipped[rows + 1 :, :] == 255).all() and (clipped[:, cols + 1 :] == 255).all()
    assert np.abs(clipped - whole)[:rows, :cols].max() <= 16
