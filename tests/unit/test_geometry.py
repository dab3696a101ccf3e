"""annotation.geometry: validation and repair of annotation shapes (areas worked out by hand)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, shape

from annotation.geometry import (
    DEFAULT_MAX_VERTICES,
    CleanGeometry,
    GeometryError,
    clean_geometry,
    count_vertices,
    geometry_area,
    to_geojson,
    to_shapely,
)

REGION = (0.0, 0.0, 100.0, 100.0)


def poly(*rings: list[tuple[float, float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring] for ring in rings]}


SQUARE = [(10, 10), (30, 10), (30, 30), (10, 30), (10, 10)]  # 20 x 20 = 400


def test_valid_square_is_unchanged() -> None:
    result = clean_geometry(poly(SQUARE), REGION)
    assert isinstance(result, CleanGeometry)
    assert result.repairs == ()
    assert not result.clipped
    assert result.area == 400.0
    assert result.vertex_count == 5
    assert shape(result.geometry).equals(shapely.Polygon(SQUARE))


def test_bow_tie_keeps_both_triangles() -> None:
    # (0,0)->(10,10)->(10,0)->(0,10): two triangles meeting at (5,5), 10*5/2 = 25 each.
    result = clean_geometry(poly([(0, 0), (10, 10), (10, 0), (0, 10), (0, 0)]), REGION)
    assert result.area == pytest.approx(50.0)
    assert any("self-intersection" in r for r in result.repairs)
    assert result.geometry["type"] == "MultiPolygon"
    assert shape(result.geometry).is_valid


def test_bow_tie_open_ring_is_closed_and_repaired() -> None:
    result = clean_geometry(poly([(0, 0), (10, 10), (10, 0), (0, 10)]), REGION)
    assert result.area == pytest.approx(50.0)
    assert "ring closed" in result.repairs


def test_duplicate_consecutive_points_removed() -> None:
    ring = [(10, 10), (30, 10), (30, 10), (30, 10), (30, 30), (10, 30), (10, 30), (10, 10)]
    result = clean_geometry(poly(ring), REGION)
    assert "duplicate consecutive points removed" in result.repairs
    assert result.area == 400.0
    assert result.vertex_count == 5


def test_partly_outside_is_clipped() -> None:
    # x from 90 to 110, y from 40 to 50: only 90..100 lies inside, 10 * 10 = 100.
    ring = [(90, 40), (110, 40), (110, 50), (90, 50), (90, 40)]
    result = clean_geometry(poly(ring), REGION)
    assert result.clipped
    assert result.area == pytest.approx(100.0)
    assert shape(result.geometry).covered_by(box(*REGION))


def test_clip_to_offset_region() -> None:
    # Region 1000..1100 x 2000..2100; the square spans 950..1050 x 2050..2150 -> 50 x 50 inside.
    ring = [(950, 2050), (1050, 2050), (1050, 2150), (950, 2150)]
    result = clean_geometry(poly(ring), (1000, 2000, 1100, 2100))
    assert result.clipped and result.area == pytest.approx(2500.0)


def test_entirely_outside_is_refused() -> None:
    ring = [(200, 200), (210, 200), (210, 210), (200, 200)]
    with pytest.raises(GeometryError, match="entirely outside the region"):
        clean_geometry(poly(ring), REGION)


def test_touching_region_edge_only_is_outside() -> None:
    ring = [(100, 10), (120, 10), (120, 20), (100, 20)]
    with pytest.raises(GeometryError, match="outside"):
        clean_geometry(poly(ring), REGION)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_coordinates_are_refused(bad: float) -> None:
    ring = [(10, 10), (30, bad), (30, 30), (10, 10)]
    with pytest.raises(GeometryError, match="NaN or infinite"):
        clean_geometry(poly(ring), REGION)


def test_two_point_ring_is_refused() -> None:
    with pytest.raises(GeometryError, match="at least 3 distinct points"):
        clean_geometry(poly([(10, 10), (20, 20), (10, 10)]), REGION)


def test_repeated_two_points_are_two_distinct_points() -> None:
    with pytest.raises(GeometryError, match="3 distinct"):
        clean_geometry(poly([(10, 10), (20, 20), (10, 10), (20, 20)]), REGION)


def test_collinear_ring_has_zero_area() -> None:
    with pytest.raises(GeometryError, match="zero area"):
        clean_geometry(poly([(10, 10), (20, 20), (30, 30), (10, 10)]), REGION)


def test_cap_plus_one_vertices_is_refused_naming_the_cap() -> None:
    n = DEFAULT_MAX_VERTICES + 1
    ring = [
        (50 + 40 * math.cos(t), 50 + 40 * math.sin(t))
        for t in (i * 2 * math.pi / n for i in range(n))
    ]
    with pytest.raises(GeometryError, match=f"cap of {DEFAULT_MAX_VERTICES}"):
        clean_geometry(poly(ring), REGION)


def test_cap_is_checked_before_coordinates() -> None:
    # A million garbage positions are refused by the count alone, without parsing them.
    body = {"type": "Polygon", "coordinates": [["junk"] * 1_000_000]}
    with pytest.raises(GeometryError, match="cap of"):
        clean_geometry(body, REGION)


def test_cap_at_the_limit_is_accepted() -> None:
    n = DEFAULT_MAX_VERTICES - 1  # plus the closing point: exactly the cap
    ring = [
        (50 + 40 * math.cos(t), 50 + 40 * math.sin(t))
        for t in (i * 2 * math.pi / n for i in range(n))
    ]
    result = clean_geometry(poly(ring), REGION)
    assert result.vertex_count <= DEFAULT_MAX_VERTICES


def test_cap_below_twenty_thousand_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="20000"):
        clean_geometry(poly(SQUARE), REGION, max_vertices=1000)


def test_polygon_with_hole_keeps_interior_ring() -> None:
    hole = [(15, 15), (25, 15), (25, 25), (15, 25), (15, 15)]  # 10 x 10 = 100
    result = clean_geometry(poly(SQUARE, hole), REGION)
    assert result.geometry["type"] == "Polygon"
    assert len(result.geometry["coordinates"]) == 2
    assert result.area == pytest.approx(300.0)


def test_hole_outside_shell_is_reported() -> None:
    hole = [(60, 60), (70, 60), (70, 70), (60, 70), (60, 60)]
    result = clean_geometry(poly(SQUARE, hole), REGION)
    assert any("hole outside its shell" in r for r in result.repairs)
    assert shape(result.geometry).is_valid


def test_multipolygon_is_accepted() -> None:
    other = [(50, 50), (60, 50), (60, 60), (50, 60), (50, 50)]  # 100
    body = {"type": "MultiPolygon", "coordinates": [[SQUARE], [other]]}
    result = clean_geometry(body, REGION)
    assert result.geometry["type"] == "MultiPolygon"
    assert result.area == pytest.approx(500.0)
    assert result.repairs == ()


def test_overlapping_multipolygon_parts_are_merged() -> None:
    other = [(20, 20), (40, 20), (40, 40), (20, 40), (20, 20)]  # overlaps SQUARE by 10 x 10
    body = {"type": "MultiPolygon", "coordinates": [[SQUARE], [other]]}
    result = clean_geometry(body, REGION)
    assert result.area == pytest.approx(400 + 400 - 100)
    assert result.repairs


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([[0, 0]], "GeoJSON object"),
        ({"type": "Point", "coordinates": [1, 2]}, "'Point' is not supported"),
        ({"type": "Polygon"}, "coordinates must be a list"),
        ({"type": "Polygon", "coordinates": []}, "non-empty list of rings"),
        ({"type": "Polygon", "coordinates": [[1, 2, 3]]}, "position must be"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [1, 1]]]}, "must be numbers"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, True], [1, 1]]]}, "must be numbers"),
        ({"type": "Polygon", "coordinates": [[0, 0], [1, 0], [1, 1]]}, "position must be"),
        ({"type": "MultiPolygon", "coordinates": []}, "no polygons"),
        ({"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1]]], 5]}, "polygon 1"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1e12, 0], [1, 1]]]}, "beyond"),
    ],
)
def test_malformed_geojson_is_refused(body: Any, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        clean_geometry(body, REGION)


def test_bad_region_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="x0 < x1"):
        clean_geometry(poly(SQUARE), (10, 0, 5, 100))


def test_helpers_round_trip_and_area() -> None:
    body = poly(SQUARE, [(15, 15), (25, 15), (25, 25), (15, 25)])
    geom = to_shapely(body)
    assert geom.area == 300.0
    back = to_geojson(geom)
    assert all(type(v) is float for ring in back["coordinates"] for p in ring for v in p)
    assert to_shapely(back).equals_exact(geom, 0)
    assert geometry_area(body) == 300.0
    assert geometry_area(poly([(0, 0), (10, 10), (10, 0), (0, 10)])) == pytest.approx(50.0)
    assert count_vertices(body) == 9
    assert to_geojson(shapely.Polygon([(0.12345, 0), (1, 0), (1, 1)]), ndigits=3)["coordinates"][0][
        0
    ] == [
        0.123,
        0.0,
    ]


# -- property: either a clear refusal or a clean shape ---------------------------------------

HYPO_REGION = (0.0, 0.0, 1000.0, 1000.0)
HYPO_CAP = 20_000

coordinate = st.one_of(
    st.floats(min_value=-200, max_value=1200, allow_nan=False),
    st.integers(min_value=-50, max_value=1050).map(float),
    st.sampled_from([0.0, 1000.0, -0.0]),
)
# Bad values go in one at a time, so most examples still reach make_valid and the clip.
SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 1e15, -1e15, 1e9, 5e8])


@st.composite
def rings(draw: st.DrawFn) -> list[list[float]]:
    roll = draw(st.integers(0, 99))
    if roll == 0:
        # Past the cap: must be refused by the count.
        return [[float(i % 1000), float(i // 1000)] for i in range(HYPO_CAP + 1)]
    grid = draw(st.booleans())  # small integer grids produce many touching/duplicate points
    point = (
        st.tuples(st.integers(0, 6).map(float), st.integers(0, 6).map(float))
        if grid
        else st.tuples(coordinate, coordinate)
    )
    size = draw(st.sampled_from([8, 40, 300]))
    points = draw(st.lists(point, min_size=0 if roll < 5 else 3, max_size=size))
    if points and draw(st.integers(0, 9)) == 0:
        i = draw(st.integers(0, len(points) - 1))
        points[i] = (draw(SPECIAL), points[i][1])
    if points and draw(st.booleans()):
        points = points + [points[0]]
    if points and draw(st.booleans()):
        i = draw(st.integers(0, len(points) - 1))
        points.insert(i, points[i])
    scale = draw(st.sampled_from([1.0, 100.0, 1.0]))
    return [[x * scale, y * scale] for x, y in points]


@st.composite
def geometries(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"type": "Polygon", "coordinates": draw(st.lists(rings(), min_size=1, max_size=3))}
    polys = draw(st.lists(st.lists(rings(), min_size=1, max_size=2), min_size=1, max_size=3))
    return {"type": "MultiPolygon", "coordinates": polys}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometries())
def test_random_shapes_are_refused_or_clean(body: dict[str, Any]) -> None:
    try:
        result = clean_geometry(body, HYPO_REGION, max_vertices=HYPO_CAP)
    except GeometryError as error:
        assert str(error)
        return
    geom = shape(result.geometry)
    assert result.geometry["type"] in ("Polygon", "MultiPolygon")
    assert geom.is_valid, shapely.is_valid_reason(geom)
    assert not geom.is_empty and geom.area > 0
    assert geom.covered_by(box(*HYPO_REGION))
    assert result.vertex_count == shapely.get_num_coordinates(geom) <= HYPO_CAP
    assert result.area == pytest.approx(geom.area)
