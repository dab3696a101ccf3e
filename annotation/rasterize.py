"""Polygons to label masks and back, on a region's grid at the working resolution (pure).

The grid of a region at level-0 origin ``(x0, y0)`` with ``downsample`` d (level-0 pixels per
working pixel, ``target_mpp / slide_mpp``): working pixel ``(row i, col j)`` covers level-0
``[x0 + j*d, x0 + (j+1)*d) x [y0 + i*d, y0 + (i+1)*d)``, and it belongs to a polygon when its
centre ``(x0 + (j + 0.5) d, y0 + (i + 0.5) d)`` lies inside (scikit-image's scan-line fill).
Holes are subtracted, so a ring-shaped gland leaves its lumen unlabelled.

Masks are ``(H, W)`` int16: compact class indices (0 = background), or ``NOT_RATED`` (-1).
Geometries are GeoJSON Polygon/MultiPolygon mappings in level-0 pixel coordinates (x right,
y down), as the annotation models store them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.affinity import affine_transform
from shapely.geometry import MultiPolygon, Polygon, box, mapping
from skimage.draw import polygon as fill_polygon

__all__ = ["NOT_RATED", "grid_shape", "mask_to_geojson", "rasterize_shapes"]

NOT_RATED = -1


def grid_shape(width: float, height: float, downsample: float) -> tuple[int, int]:
    """``(H, W)`` working pixels of a level-0 ``width x height`` rectangle (at least 1 x 1)."""
    if not downsample > 0 or not math.isfinite(downsample):
        raise ValueError(f"downsample must be a positive number, got {downsample}")
    return max(1, round(height / downsample)), max(1, round(width / downsample))


def _polygons(geometry: Mapping[str, Any]) -> list[Sequence[Sequence[Sequence[float]]]]:
    kind = geometry.get("type")
    if kind == "Polygon":
        return [geometry["coordinates"]]
    if kind == "MultiPolygon":
        return list(geometry["coordinates"])
    raise ValueError(f"expected a Polygon or MultiPolygon, got {kind!r}")


def _ring_pixels(
    ring: Sequence[Sequence[float]],
    origin: tuple[float, float],
    downsample: float,
    shape: tuple[int, int],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    coords = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    # Working-pixel index space, where pixel j's centre sits at the integer j.
    cols = (coords[:, 0] - origin[0]) / downsample - 0.5
    rows = (coords[:, 1] - origin[1]) / downsample - 0.5
    return fill_polygon(rows, cols, shape=shape)


def rasterize_shapes(
    shapes: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    origin: tuple[float, float],
    shape: tuple[int, int],
    downsample: float,
) -> npt.NDArray[np.int16]:
    """Paint ``(class index, GeoJSON)`` pairs into an ``(H, W)`` int16 mask, background 0.

    Args:
        shapes: in painting order: where one annotator's shapes overlap, the later one wins.
        origin: level-0 ``(x0, y0)`` of the grid's top-left corner.
        shape: ``(H, W)`` of the grid.
        downsample: level-0 pixels per grid pixel.

    Returns:
        ``(H, W)`` int16 mask; pixels whose centre is in a polygon's shell and outside its holes
        take that shape's class index.
    """
    if not downsample > 0:
        raise ValueError(f"downsample must be positive, got {downsample}")
    mask = np.zeros(shape, dtype=np.int16)
    inside = np.zeros(shape, dtype=bool)
    for class_index, geometry in shapes:
        if not 0 <= int(class_index) < 2**15:
            raise ValueError(f"class index must fit int16 and be >= 0, got {class_index}")
        for rings in _polygons(geometry):
            if not rings:
                continue
            inside[:] = False
            inside[_ring_pixels(rings[0], origin, downsample, shape)] = True
            for hole in rings[1:]:
                inside[_ring_pixels(hole, origin, downsample, shape)] = False
            mask[inside] = class_index
    return mask


def _runs_geometry(binary: npt.NDArray[np.bool_]) -> Polygon | MultiPolygon | None:
    """The union of the mask's pixel squares (grid units), merged from horizontal runs."""
    boxes = []
    padded = np.zeros((binary.shape[0], binary.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = binary
    edges = np.diff(padded, axis=1)
    for row in np.flatnonzero(edges.any(axis=1)):
        starts = np.flatnonzero(edges[row] == 1)
        ends = np.flatnonzero(edges[row] == -1)
        boxes.extend(box(s, row, e, row + 1) for s, e in zip(starts, ends, strict=True))
    if not boxes:
        return None
    merged = shapely.simplify(shapely.unary_union(boxes), 0.0)  # drop collinear run corners
    return merged if isinstance(merged, Polygon | MultiPolygon) else None


def mask_to_geojson(
    mask: npt.NDArray[np.integer],
    *,
    origin: tuple[float, float],
    downsample: float,
    classes: Iterable[int] | None = None,
    ndigits: int = 3,
) -> list[tuple[int, dict[str, Any]]]:
    """Exact outlines of each class's pixels as level-0 GeoJSON (Polygon or MultiPolygon).

    The outline follows pixel edges, so rasterising it on the same grid gives the mask back.

    Args:
        mask: ``(H, W)`` class indices; 0 (background) and negative values are not outlined.
        origin: level-0 ``(x0, y0)`` of the grid.
        downsample: level-0 pixels per grid pixel.
        classes: the class indices to outline; default every positive index present.
        ndigits: rounding of the level-0 coordinates.

    Returns:
        ``(class index, geometry)`` pairs by increasing class; classes without pixels left out.
    """
    mask = np.asarray(mask)
    wanted = sorted(int(c) for c in (classes if classes is not None else np.unique(mask)) if c > 0)
    found = []
    for class_index in wanted:
        geom = _runs_geometry(mask == class_index)
        if geom is None:
            continue
        level0 = affine_transform(geom, [downsample, 0, 0, downsample, origin[0], origin[1]])
        found.append((class_index, _rounded(mapping(level0), ndigits)))
    return found


def _rounded(value: Any, ndigits: int) -> Any:
    if isinstance(value, float | int):
        return round(float(value), ndigits)
    if isinstance(value, list | tuple):
        return [_rounded(v, ndigits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, ndigits) if k == "coordinates" else v for k, v in value.items()}
    return value
