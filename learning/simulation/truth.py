"""Ground truth of a slide: polygons to draw from and label masks to score against (pure).

Sources: the synthetic generator's GeoJSON (tissue and glands; nuclei are left out, they are
smaller than a working pixel at the simulator's resolutions), any annotation file the project
imports (QuPath GeoJSON, ASAP XML, Aperio XML), or a label mask (uint8 TIFF, class id per
level-0 pixel; value v is class ``class<v>``), outlined with the project's own
``mask_to_geojson``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from annotation.rasterize import grid_shape, mask_to_geojson, rasterize_shapes

SYNTHETIC_CLASSES = ("tissue", "gland")
_MAX_FILE_BYTES = 1 << 30


class GroundTruth:
    """Class-named polygons of one slide in level-0 px, painted in ``classes`` order."""

    def __init__(self, shapes: Sequence[tuple[str, BaseGeometry]], classes: Sequence[str]) -> None:
        self.classes = list(classes)
        order = {c: i for i, c in enumerate(self.classes)}
        kept = [(n, g) for n, g in shapes if n in order and not g.is_empty]
        kept.sort(key=lambda s: order[s[0]])  # stable: file order within a class
        self.names = [n for n, _ in kept]
        self.geoms = [g for _, g in kept]
        self.tree = STRtree(self.geoms)

    def shapes_in(self, x: float, y: float, w: float, h: float) -> list[tuple[str, BaseGeometry]]:
        hits = sorted(int(i) for i in self.tree.query(box(x, y, x + w, y + h)))
        return [(self.names[i], self.geoms[i]) for i in hits]

    def mask(
        self, origin: tuple[float, float], shape: tuple[int, int], downsample: float
    ) -> np.ndarray:
        """``(H, W)`` int16 class indices (1 + position in ``classes``; 0 background)."""
        x, y = origin
        found = self.shapes_in(x, y, shape[1] * downsample, shape[0] * downsample)
        return rasterize_shapes(
            [(self.classes.index(n) + 1, mapping(g)) for n, g in found],
            origin=origin,
            shape=shape,
            downsample=downsample,
        )


def from_annotation_file(path: Path, classes: Sequence[str] | None = None) -> GroundTruth:
    """GeoJSON, ASAP or Aperio XML (read by the project's importers); classes in file order."""
    from annotation.interop import read_annotations

    data = Path(path).read_bytes()
    result = read_annotations(data, Path(path).name, max_bytes=_MAX_FILE_BYTES, max_shapes=10**7)
    named = [
        (s.class_name or "object", shapely.make_valid(shape(s.geometry))) for s in result.shapes
    ]
    if classes is None:
        classes = list(dict.fromkeys(n for n, _ in named))
    return GroundTruth(named, classes)


def from_synthetic_geojson(path: Path) -> GroundTruth:
    return from_annotation_file(path, SYNTHETIC_CLASSES)


def from_mask(path: Path, downsample: float = 1.0) -> GroundTruth:
    """Outline a level-0 label mask (values = class ids, 0 background) into class polygons."""
    import tifffile

    mask = np.asarray(tifffile.imread(str(path), level=0))
    if mask.ndim == 3:
        mask = mask[..., 0]
    step = max(1, int(round(downsample)))
    small = mask[step // 2 :: step, step // 2 :: step].astype(np.int16)
    values = sorted(int(v) for v in np.unique(small) if v > 0)
    outlines = mask_to_geojson(small, origin=(0.0, 0.0), downsample=float(step), classes=values)
    named = [(f"class{v}", shapely.make_valid(shape(g))) for v, g in outlines]
    return GroundTruth(named, [f"class{v}" for v in values])


def region_grid(
    x: int, y: int, w: int, h: int, downsample: float
) -> tuple[tuple[float, float], tuple[int, int]]:
    return (float(x), float(y)), grid_shape(w, h, downsample)
