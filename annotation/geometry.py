"""Validation and repair of annotation shapes (pure shapely 2, no Django).

Shapes arrive as GeoJSON geometry dicts (``Polygon`` or ``MultiPolygon``, holes allowed) in
level-0 pixel coordinates of the slide: x to the right, y down, as QuPath writes them. A region
is the rectangle ``(x0, y0, x1, y1)`` in the same coordinates (``x0 < x1``, ``y0 < y1``).

:func:`clean_geometry` either returns a :class:`CleanGeometry` that is valid, polygonal,
non-empty, inside the region and under the vertex cap, or raises :class:`GeometryError` with a
message an annotator can act on. Repairs use ``shapely.make_valid``, never ``buffer(0)``: the
latter silently drops one lobe of a self-intersecting "bow-tie", i.e. half of what was drawn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Final

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_VERTICES",
    "MIN_MAX_VERTICES",
    "CleanGeometry",
    "GeometryError",
    "clean_geometry",
    "count_vertices",
    "geometry_area",
    "to_geojson",
    "to_shapely",
]

DEFAULT_MAX_VERTICES: Final = 25_000
# Real ASAP polygons reach 10.7k vertices; a cap below 20k would refuse honest work.
MIN_MAX_VERTICES: Final = 20_000
# No slide is wider than ~1e6 px at level 0; far larger values are junk and would overflow
# the products inside area and intersection computations.
MAX_ABS_COORDINATE: Final = 1e9
# Output vertices are snapped to a 0.001 px grid (valid output guaranteed by GEOS).
GRID_SIZE: Final = 1e-3

Point = tuple[float, float]
Ring = list[Point]

RING_CLOSED: Final = "ring closed"
DUPLICATES_REMOVED: Final = "duplicate consecutive points removed"
SELF_INTERSECTION: Final = "self-intersection repaired"
HOLE_OUTSIDE_SHELL: Final = (
    "hole outside its shell repaired (make_valid made it a separate polygon)"
)
NON_AREA_DROPPED: Final = "non-area parts (lines or points) dropped"


class GeometryError(ValueError):
    """A shape that cannot be accepted; the message names the problem."""


@dataclass(frozen=True)
class CleanGeometry:
    """A valid polygonal shape inside its region, in level-0 px (x right, y down).

    ``geometry`` is a GeoJSON ``Polygon`` or ``MultiPolygon`` dict with plain Python floats;
    ``repairs`` says in words what was changed; ``clipped`` is true when part of the shape lay
    outside the region; ``area`` is in square level-0 pixels; ``vertex_count`` counts every
    stored position, closing points included.
    """

    geometry: dict[str, Any]
    repairs: tuple[str, ...]
    clipped: bool
    area: float
    vertex_count: int


def clean_geometry(
    geojson: Mapping[str, Any],
    region: tuple[float, float, float, float],
    *,
    max_vertices: int = DEFAULT_MAX_VERTICES,
) -> CleanGeometry:
    """Validate, repair and clip one annotation shape to ``region`` (level-0 px).

    Raises :class:`GeometryError` for malformed GeoJSON, NaN/infinite coordinates, rings with
    fewer than 3 distinct points, more than ``max_vertices`` positions, zero area after repair,
    or a shape entirely outside the region.
    """
    if max_vertices < MIN_MAX_VERTICES:
        raise ValueError(f"max_vertices must be >= {MIN_MAX_VERTICES}, got {max_vertices}")
    region_box = _region_box(region)
    # The cap comes first: it walks rings only, so a million-vertex body is refused cheaply.
    count = count_vertices(geojson)
    if count > max_vertices:
        raise GeometryError(f"shape has {count} vertices, more than the cap of {max_vertices}")
    repairs: list[str] = []
    polygons = [_normalise_rings(rings, where, repairs) for rings, where in _parsed(geojson)]
    geom = _build(polygons)
    geom = _repair(geom, repairs)
    # Snap-rounding a sliver of subnormal width divides by ~0 inside GEOS; the sliver just
    # collapses (zero area, refused below), so the floating-point warning is noise.
    with np.errstate(divide="ignore", invalid="ignore"):
        geom = shapely.set_precision(geom, GRID_SIZE)
    geom = _polygonal(geom)
    if geom is None or geom.area <= 0:
        raise GeometryError("shape has zero area after repair")
    clipped = not shapely.covered_by(geom, region_box)
    if clipped:
        geom = _polygonal(shapely.intersection(geom, region_box))
        if geom is None or geom.area <= 0:
            raise GeometryError(f"shape lies entirely outside the region {_fmt_region(region)}")
    if not geom.is_valid:  # safety net: GEOS output should always be valid here
        raise GeometryError(f"shape could not be repaired ({shapely.is_valid_reason(geom)})")
    vertex_count = int(shapely.get_num_coordinates(geom))
    if vertex_count > max_vertices:
        raise GeometryError(
            f"shape has {vertex_count} vertices after repair and clipping, "
            f"more than the cap of {max_vertices}"
        )
    return CleanGeometry(
        geometry=to_geojson(geom),
        repairs=tuple(repairs),
        clipped=clipped,
        area=float(geom.area),
        vertex_count=vertex_count,
    )


def count_vertices(geojson: Mapping[str, Any]) -> int:
    """Number of positions in a Polygon/MultiPolygon, checking nesting down to rings only."""
    return sum(len(ring) for rings, _ in _ring_lists(geojson) for ring in rings)


def to_shapely(geojson: Mapping[str, Any]) -> Polygon | MultiPolygon:
    """Build a shapely Polygon/MultiPolygon from GeoJSON, without repair (may be invalid).

    Open rings are closed; malformed input raises :class:`GeometryError`.
    """
    polygons = []
    for rings, where in _parsed(geojson):
        closed = []
        for index, ring in enumerate(rings):
            _check_distinct(ring, f"{where}, ring {index}")
            closed.append(ring if ring[0] == ring[-1] else [*ring, ring[0]])
        polygons.append(closed)
    return _build(polygons)


def to_geojson(geom: BaseGeometry, *, ndigits: int | None = None) -> dict[str, Any]:
    """GeoJSON dict of a Polygon/MultiPolygon with plain floats, optionally rounded."""
    if isinstance(geom, Polygon):
        return {"type": "Polygon", "coordinates": _polygon_coords(geom, ndigits)}
    if isinstance(geom, MultiPolygon):
        parts = [_polygon_coords(part, ndigits) for part in geom.geoms]
        return {"type": "MultiPolygon", "coordinates": parts}
    raise GeometryError(f"only Polygon and MultiPolygon can be written, not {geom.geom_type}")


def geometry_area(geom: Mapping[str, Any] | BaseGeometry) -> float:
    """Area in square level-0 px; invalid shapes are made valid first (a bow-tie counts twice)."""
    shape = geom if isinstance(geom, BaseGeometry) else to_shapely(geom)
    if not shape.is_valid:
        shape = shapely.make_valid(shape, method="structure", keep_collapsed=False)
    return float(shape.area)


# -- parsing ----------------------------------------------------------------------------------


def _ring_lists(geojson: Mapping[str, Any]) -> list[tuple[Sequence[Any], str]]:
    """Each polygon's raw ring list with a location for messages; checks nesting to rings."""
    if not isinstance(geojson, Mapping):
        raise GeometryError(f"geometry must be a GeoJSON object, not {type(geojson).__name__}")
    kind = geojson.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise GeometryError(
            f"geometry type {kind!r} is not supported: only Polygon and MultiPolygon"
        )
    coords = geojson.get("coordinates")
    if not _is_array(coords):
        raise GeometryError(f"{kind} coordinates must be a list")
    if kind == "Polygon":
        polygons = [(coords, "polygon")]
    else:
        if not coords:
            raise GeometryError("MultiPolygon has no polygons")
        polygons = [(rings, f"polygon {i}") for i, rings in enumerate(coords)]
    for rings, where in polygons:
        if not _is_array(rings) or not rings:
            raise GeometryError(f"{where}: a polygon must be a non-empty list of rings")
        for index, ring in enumerate(rings):
            if not _is_array(ring):
                raise GeometryError(f"{where}, ring {index}: a ring must be a list of positions")
    return polygons


def _parsed(geojson: Mapping[str, Any]) -> list[tuple[list[Ring], str]]:
    """Rings as float tuples, positions checked (numeric, finite, in range)."""
    return [
        ([_parse_ring(ring, f"{where}, ring {i}") for i, ring in enumerate(rings)], where)
        for rings, where in _ring_lists(geojson)
    ]


def _parse_ring(ring: Sequence[Any], where: str) -> Ring:
    points: Ring = []
    for k, position in enumerate(ring):
        if not _is_array(position) or len(position) not in (2, 3):
            raise GeometryError(
                f"{where}, point {k}: a position must be [x, y], got {position!r}"[:160]
            )
        x, y = position[0], position[1]
        if not _is_number(x) or not _is_number(y):
            raise GeometryError(
                f"{where}, point {k}: coordinates must be numbers, got {x!r}, {y!r}"[:160]
            )
        x, y = float(x), float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise GeometryError(f"{where}, point {k}: coordinate is NaN or infinite")
        if abs(x) > MAX_ABS_COORDINATE or abs(y) > MAX_ABS_COORDINATE:
            raise GeometryError(
                f"{where}, point {k}: coordinate ({x:g}, {y:g}) "
                f"is beyond ±{MAX_ABS_COORDINATE:g} px"
            )
        points.append((x, y))
    return points


def _normalise_rings(rings: list[Ring], where: str, repairs: list[str]) -> list[Ring]:
    """Drop consecutive duplicates and close each ring, noting both in ``repairs``."""
    out = []
    for index, ring in enumerate(rings):
        label = f"{where}, ring {index}"
        _check_distinct(ring, label)
        kept = [ring[0]] + [p for prev, p in zip(ring, ring[1:], strict=False) if p != prev]
        if len(kept) < len(ring):
            _note(repairs, DUPLICATES_REMOVED)
        if kept[0] != kept[-1]:
            _note(repairs, RING_CLOSED)
            kept.append(kept[0])
        out.append(kept)
    return out


def _check_distinct(ring: Ring, where: str) -> None:
    distinct = len(set(ring))
    if distinct < 3:
        raise GeometryError(f"{where}: a ring needs at least 3 distinct points, it has {distinct}")


# -- shapely work -----------------------------------------------------------------------------


def _build(polygons: list[list[Ring]]) -> Polygon | MultiPolygon:
    shapes = [Polygon(rings[0], rings[1:]) for rings in polygons]
    return shapes[0] if len(shapes) == 1 else MultiPolygon(shapes)


def _repair(geom: BaseGeometry, repairs: list[str]) -> BaseGeometry:
    if geom.is_valid:
        return geom
    reason = shapely.is_valid_reason(geom)
    if "Self-intersection" in reason:  # GEOS: "Self-intersection[x y]", "Ring Self-intersection"
        _note(repairs, SELF_INTERSECTION)
    elif reason.startswith("Hole lies outside shell"):
        _note(repairs, HOLE_OUTSIDE_SHELL)
    else:
        _note(repairs, f"invalid geometry repaired ({reason.split('[')[0].strip()})")
    logger.debug("make_valid: %s", reason)
    # "structure" unions shells and subtracts holes, so overlapping parts drawn by the annotator
    # keep their overlap; the default "linework" method XORs them (an overlap becomes a hole).
    # Both keep both lobes of a bow-tie.
    repaired = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    if _has_non_area_parts(repaired):
        _note(repairs, NON_AREA_DROPPED)
    return repaired


def _flatten(geom: BaseGeometry) -> list[BaseGeometry]:
    if hasattr(geom, "geoms"):
        return [leaf for part in geom.geoms for leaf in _flatten(part)]
    return [geom]


def _has_non_area_parts(geom: BaseGeometry) -> bool:
    return any(not isinstance(p, Polygon) and not p.is_empty for p in _flatten(geom))


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    """The non-empty polygons of ``geom`` as one Polygon/MultiPolygon, or None."""
    parts = [p for p in _flatten(geom) if isinstance(p, Polygon) and not p.is_empty]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    multi = MultiPolygon(parts)
    # make_valid's polygonal parts never overlap, but parts from other sources might.
    return multi if multi.is_valid else _polygonal(shapely.union_all(parts))


def _polygon_coords(polygon: Polygon, ndigits: int | None) -> list[list[list[float]]]:
    rings = [polygon.exterior, *polygon.interiors]
    out = []
    for ring in rings:
        xy = np.asarray(ring.coords, dtype=float)[:, :2]
        if ndigits is not None:
            xy = xy.round(ndigits)
        out.append(xy.tolist())
    return out


# -- small helpers ----------------------------------------------------------------------------


def _region_box(region: tuple[float, float, float, float]) -> Polygon:
    if len(region) != 4 or not all(_is_number(v) and math.isfinite(v) for v in region):
        raise ValueError(f"region must be four finite numbers (x0, y0, x1, y1), got {region!r}")
    x0, y0, x1, y1 = (float(v) for v in region)
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"region must have x0 < x1 and y0 < y1, got {region!r}")
    return box(x0, y0, x1, y1)


def _fmt_region(region: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in region) + ")"


def _is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _is_number(value: Any) -> bool:
    # bool is an int subclass; True as a coordinate is a bug upstream, not the number 1.
    return isinstance(value, Real) and not isinstance(value, bool)


def _note(repairs: list[str], message: str) -> None:
    if message not in repairs:
        repairs.append(message)
