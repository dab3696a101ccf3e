"""annotation.interop against real exports (QuPath, ASAP, V7) and hand-made Aperio XML.

Expected counts are worked out here independently of the importers: a plain json walk for
GeoJSON and regular expressions over the raw text for ASAP XML.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import shape as to_shape

from annotation.geometry import clean_geometry, geometry_area
from annotation.interop import (
    FORMATS,
    ImportedShape,
    ImportResult,
    InteropError,
    read_annotations,
    write_annotations,
)
from tests.datapaths import shared_data_dir

BIG = 100_000_000
GEOJSON_FILES = {  # file -> number of shapes the data README states
    "qupath05.geojson": 3,
    "training_set_metastatic_roi_102_nuclei.geojson": 302,
    "training_set_primary_roi_101_nuclei.geojson": 382,
}
ASAP_FILES = (
    "benchmark_tissue_TCGA-G9-6378-01A-01-BS1.bc59e095-f3ab-4a6e-8cef-ea7fc76abec8.xml",
    "benchmark_tissue_tumor_031.xml",
    "camelyon16_metastasis_tumor_009.xml",
    "camelyon16_metastasis_tumor_085.xml",
    "tissue_artifact_TCGA-2H-A9GF_RES.xml",
    "tissue_artifact_tumor_001.xml",
)
ALL_FILES = (*GEOJSON_FILES, *ASAP_FILES)


@pytest.fixture(scope="module")
def annotations_dir() -> Path:
    return shared_data_dir() / "annotations"


def read(data: bytes, name: str = "upload", **limits: int) -> ImportResult:
    return read_annotations(
        data,
        name,
        max_bytes=limits.get("max_bytes", BIG),
        max_shapes=limits.get("max_shapes", 10**6),
    )


def classes(result: ImportResult) -> Counter[str]:
    return Counter(s.class_name for s in result.shapes)


# -- independent counts -----------------------------------------------------------------------


def geojson_expectation(text: str) -> tuple[Counter[str], int]:
    """Per-class polygon counts and the number of non-polygon features, by a plain json walk."""
    features = json.loads(text)["features"]
    kept: Counter[str] = Counter()
    other = 0
    for feature in features:
        if feature["geometry"]["type"] not in ("Polygon", "MultiPolygon"):
            other += 1
            continue
        props = feature["properties"]
        name = props["classification"]["name"] if "classification" in props else props["name"]
        kept[name] += 1
    return kept, other


ANNOTATION_TAG = re.compile(r"<Annotation\b([^>]*)>(.*?)</Annotation>", re.S)


def asap_expectation(text: str) -> tuple[Counter[str], int, int]:
    """Per-group counts of polygonal annotations, skipped count, and total coordinates."""
    kept: Counter[str] = Counter()
    skipped = 0
    coordinates = 0
    for attributes, body in ANNOTATION_TAG.findall(text):
        kind = re.search(r'\bType="([^"]*)"', attributes).group(1)
        group = re.search(r'\bPartOfGroup="([^"]*)"', attributes).group(1)
        if kind in ("Polygon", "Spline", "Rectangle"):
            kept[group] += 1
            coordinates += len(re.findall(r"<Coordinate\b", body))
        else:
            skipped += 1
    return kept, skipped, coordinates


@pytest.mark.parametrize("name", list(GEOJSON_FILES))
def test_geojson_file_counts_match_independent_count(annotations_dir: Path, name: str) -> None:
    data = (annotations_dir / name).read_bytes()
    expected, other = geojson_expectation(data.decode())
    result = read(data, name)
    assert result.format == "geojson"
    assert sum(expected.values()) == GEOJSON_FILES[name]
    assert classes(result) == expected
    assert len(result.skipped) == other
    assert len(expected) <= 8


@pytest.mark.parametrize("name", ASAP_FILES)
def test_asap_file_counts_match_independent_count(annotations_dir: Path, name: str) -> None:
    text = (annotations_dir / name).read_text()
    expected, skipped, coordinates = asap_expectation(text)
    result = read(text.encode(), name)
    assert result.format == "asap"
    assert classes(result) == expected
    assert len(result.skipped) == skipped
    # Every coordinate read: each ring is stored closed, one more position than in the file.
    stored = sum(len(s.geometry["coordinates"][0]) - 1 for s in result.shapes)
    assert stored == coordinates


def test_asap_coordinates_are_read_in_order(annotations_dir: Path) -> None:
    text = (annotations_dir / "camelyon16_metastasis_tumor_009.xml").read_text()
    first = re.search(r'<Coordinate Order="0" X="([^"]+)" Y="([^"]+)"', text)
    second = re.search(r'<Coordinate Order="1" X="([^"]+)" Y="([^"]+)"', text)
    ring = read(text.encode()).shapes[0].geometry["coordinates"][0]
    assert ring[0] == [float(first.group(1)), float(first.group(2))]
    assert ring[1] == [float(second.group(1)), float(second.group(2))]
    assert ring[-1] == ring[0]


def test_qupath05_takes_the_class_from_name(annotations_dir: Path) -> None:
    result = read((annotations_dir / "qupath05.geojson").read_bytes())
    assert classes(result) == Counter({"I": 2, "UT": 1})


def test_darwin_json_is_refused_clearly(annotations_dir: Path) -> None:
    data = (annotations_dir / "darwin_v7_103S.json").read_bytes()
    with pytest.raises(InteropError, match="V7 Darwin JSON is not supported: export GeoJSON"):
        read(data, "darwin_v7_103S.json")


@pytest.mark.parametrize("name", ALL_FILES)
def test_real_shapes_pass_validation(annotations_dir: Path, name: str) -> None:
    for item in read((annotations_dir / name).read_bytes()).shapes:
        x0, y0, x1, y1 = to_shape(item.geometry).bounds
        cleaned = clean_geometry(item.geometry, (x0 - 1, y0 - 1, x1 + 1, y1 + 1))
        # Vertices snap to a 0.001 px grid: the area moves by at most perimeter * 0.001.
        slack = to_shape(item.geometry).length * 1e-3
        assert cleaned.area == pytest.approx(geometry_area(item.geometry), abs=slack)


# -- round trips ------------------------------------------------------------------------------


def assert_same_shapes(before: list[ImportedShape], after: list[ImportedShape]) -> None:
    """Same count, classes and geometry (coordinates within 1e-3 px), in any order."""

    def key(item: ImportedShape) -> tuple[Any, ...]:
        return (item.class_name, *to_shape(item.geometry).bounds)

    assert len(after) == len(before)
    for a, b in zip(sorted(before, key=key), sorted(after, key=key), strict=True):
        assert a.class_name == b.class_name
        assert to_shape(a.geometry).equals_exact(to_shape(b.geometry), 1e-3)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ALL_FILES)
def test_real_file_round_trips(annotations_dir: Path, name: str, fmt: str) -> None:
    original = read((annotations_dir / name).read_bytes(), name)
    exported = write_annotations(original.shapes, fmt)
    again = read(exported, f"export.{fmt}")
    assert again.format == fmt
    assert again.skipped == []
    assert classes(again) == classes(original)
    assert_same_shapes(original.shapes, again.shapes)
    if fmt == original.format:  # ids survive a round trip through their own format
        assert [s.source_id for s in again.shapes] == [s.source_id for s in original.shapes]


# -- Aperio (no real file in the data: hand-made, areas by hand) -------------------------------

APERIO = b"""<?xml version="1.0" encoding="utf-8"?>
<Annotations MicronsPerPixel="0.252">
  <Annotation Id="1" Name="" LineColor="65280">
    <Attributes><Attribute Name="Tumor" Id="0" Value=""/></Attributes>
    <Regions>
      <RegionAttributeHeaders/>
      <Region Id="1" Type="0" NegativeROI="0"><Vertices>
        <Vertex X="0" Y="0"/><Vertex X="100" Y="0"/><Vertex X="100" Y="100"/><Vertex X="0" Y="100"/>
      </Vertices></Region>
      <Region Id="2" Type="0" NegativeROI="1"><Vertices>
        <Vertex X="25" Y="25"/><Vertex X="75" Y="25"/><Vertex X="75" Y="75"/><Vertex X="25" Y="75"/>
      </Vertices></Region>
      <Region Id="3" Type="1" NegativeROI="0"><Vertices>
        <Vertex X="200.5" Y="0"/><Vertex X="300.5" Y="0"/><Vertex X="300.5" Y="50"/>
        <Vertex X="200.5" Y="50"/>
      </Vertices></Region>
      <Region Id="4" Type="2" NegativeROI="0"><Vertices>
        <Vertex X="0" Y="500"/><Vertex X="50" Y="550"/>
      </Vertices></Region>
      <Region Id="5" Type="0" NegativeROI="1"><Vertices>
        <Vertex X="900" Y="900"/><Vertex X="950" Y="900"/><Vertex X="950" Y="950"/>
      </Vertices></Region>
    </Regions>
  </Annotation>
  <Annotation Id="2" Name="Stroma">
    <Regions><Region Id="1" Type="0"><Vertices>
      <Vertex X="0" Y="200"/><Vertex X="100" Y="200"/><Vertex X="0" Y="300"/>
    </Vertices></Region></Regions>
  </Annotation>
  <Annotation Id="3">
    <Regions><Region Id="1" Type="1"><Vertices>
      <Vertex X="10" Y="10"/><Vertex X="20" Y="30"/>
    </Vertices></Region></Regions>
  </Annotation>
</Annotations>
"""


def test_aperio_hand_made_file() -> None:
    result = read(APERIO, "slide.xml")
    assert result.format == "aperio"
    assert classes(result) == Counter({"Tumor": 2, "Stroma": 1, "Annotation 3": 1})
    by_id = {s.source_id: s for s in result.shapes}
    # Square 100 x 100 with a 50 x 50 negative region: 10000 - 2500.
    holed = by_id["1/1"].geometry
    assert len(holed["coordinates"]) == 2
    assert clean_geometry(holed, (0, 0, 1000, 1000)).area == pytest.approx(7500)
    assert geometry_area(by_id["1/3"].geometry) == pytest.approx(100 * 50)
    assert geometry_area(by_id["2/1"].geometry) == pytest.approx(100 * 100 / 2)
    assert geometry_area(by_id["3/1"].geometry) == pytest.approx(10 * 20)  # two-corner rectangle
    assert len(result.skipped) == 2
    assert any("ellipse" in reason for reason in result.skipped)
    assert any("negative region overlaps no region" in reason for reason in result.skipped)


@pytest.mark.parametrize("fmt", FORMATS)
def test_aperio_hand_made_file_round_trips(fmt: str) -> None:
    original = read(APERIO)
    again = read(write_annotations(original.shapes, fmt))
    assert_same_shapes(original.shapes, again.shapes)


# -- ASAP and GeoJSON details -----------------------------------------------------------------

ASAP = b"""<?xml version="1.0"?>
<ASAP_Annotations><Annotations>
  <Annotation Name="a" Type="Polygon" PartOfGroup="tumor" Color="#F4FA58"><Coordinates>
    <Coordinate Order="2" X="10,5" Y="10"/><Coordinate Order="0" X="0" Y="0"/>
    <Coordinate Order="1" X="10,5" Y="0"/><Coordinate Order="3" X="0" Y="10"/>
  </Coordinates></Annotation>
  <Annotation Name="b" Type="Spline" PartOfGroup="None" Color="#F4FA58"><Coordinates>
    <Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="5" Y="0"/>
    <Coordinate Order="2" X="5" Y="5"/>
  </Coordinates></Annotation>
  <Annotation Name="c" Type="Dot" PartOfGroup="tumor" Color="#F4FA58"><Coordinates>
    <Coordinate Order="0" X="1" Y="1"/></Coordinates></Annotation>
  <Annotation Name="d" Type="PointSet" PartOfGroup="tumor" Color="#F4FA58"><Coordinates>
    <Coordinate Order="0" X="1" Y="1"/><Coordinate Order="1" X="2" Y="2"/></Coordinates>
  </Annotation>
  <Annotation Name="e" Type="Polygon" PartOfGroup="tumor" Color="#F4FA58"><Coordinates>
    <Coordinate Order="0" X="0" Y="0"/><Coordinate Order="1" X="abc" Y="0"/>
    <Coordinate Order="2" X="1" Y="1"/></Coordinates></Annotation>
</Annotations><AnnotationGroups/></ASAP_Annotations>
"""


def test_asap_order_decimal_commas_spline_and_skips() -> None:
    result = read(ASAP)
    assert [s.source_id for s in result.shapes] == ["a", "b"]
    ring = result.shapes[0].geometry["coordinates"][0]
    assert ring == [[0.0, 0.0], [10.5, 0.0], [10.5, 10.0], [0.0, 10.0], [0.0, 0.0]]
    assert result.shapes[1].class_name == ""  # PartOfGroup="None": no group
    assert len(result.skipped) == 3
    assert sum("'Dot' is not supported" in r or "'PointSet'" in r for r in result.skipped) == 2
    assert any("not a number: 'abc'" in r for r in result.skipped)


MULTI = ImportedShape(
    geometry={
        "type": "MultiPolygon",
        "coordinates": [
            [
                [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]],
                [[10, 10], [30, 10], [30, 30], [10, 30], [10, 10]],
                [[50, 50], [70, 50], [70, 70], [50, 70], [50, 50]],
            ],
            [[[200, 0], [300, 0], [250, 80], [200, 0]]],
        ],
    },
    class_name="tumor",
    source_id="m1",
)


def test_multipolygon_with_holes_round_trips_in_geojson() -> None:
    again = read(write_annotations([MULTI], "geojson"))
    assert_same_shapes([MULTI], again.shapes)


@pytest.mark.parametrize("fmt", ["asap", "aperio"])
def test_multipolygon_parts_come_back_as_shapes_with_their_holes(fmt: str) -> None:
    again = read(write_annotations([MULTI], fmt))
    assert len(again.shapes) == 2 and {s.class_name for s in again.shapes} == {"tumor"}
    rebuilt = shapely.union_all([to_shape(s.geometry) for s in again.shapes])
    original = to_shape(MULTI.geometry)
    assert rebuilt.symmetric_difference(original).area < 1e-6 * original.area
    assert sorted(len(s.geometry["coordinates"]) for s in again.shapes) == [1, 3]


def test_geojson_list_single_feature_and_skips() -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    features = [
        {
            "type": "Feature",
            "geometry": square,
            "properties": {"classification": {"names": ["T", "P"]}},
        },
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
        {"type": "Feature", "geometry": None, "properties": {"name": "x"}},
    ]
    result = read(json.dumps(features).encode())
    assert [s.class_name for s in result.shapes] == ["T: P"]
    assert len(result.skipped) == 3
    assert any("Point geometry is not supported" in r for r in result.skipped)
    single = read(json.dumps(features[0]).encode())
    assert len(single.shapes) == 1


def test_geojson_export_is_what_qupath_reads() -> None:
    item = ImportedShape(MULTI.geometry, "tumor", "6423a977-ffff-48db-affc-cd11632010f0")
    feature = json.loads(write_annotations([item], "geojson"))["features"][0]
    assert feature["id"] == item.source_id
    assert feature["properties"]["objectType"] == "annotation"
    classification = feature["properties"]["classification"]
    assert classification["name"] == "tumor"
    assert len(classification["color"]) == 3 and all(0 <= c <= 255 for c in classification["color"])


# -- refusals ---------------------------------------------------------------------------------


def test_file_over_the_size_cap_is_refused(annotations_dir: Path) -> None:
    data = (annotations_dir / "qupath05.geojson").read_bytes()
    with pytest.raises(
        InteropError, match="qupath05.geojson: file is .* bytes, more than the limit of 1,000"
    ):
        read(data, "qupath05.geojson", max_bytes=1000)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("training_set_primary_roi_101_nuclei.geojson", 382),
        ("camelyon16_metastasis_tumor_085.xml", 50),
    ],
)
def test_file_over_the_shape_cap_is_refused(annotations_dir: Path, name: str, count: int) -> None:
    data = (annotations_dir / name).read_bytes()
    with pytest.raises(InteropError, match=f"{count} shapes, more than the limit of 10"):
        read(data, name, max_shapes=10)


def test_aperio_shape_cap_counts_regions() -> None:
    with pytest.raises(InteropError, match="7 shapes, more than the limit of 3"):
        read(APERIO, max_shapes=3)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<ASAP_Annotations><Annotations>&lol2;</Annotations></ASAP_Annotations>
"""


@pytest.mark.parametrize(
    "payload",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.decode().encode("utf-16"),
        b'<?xml version="1.0"?>\n<!doctype x SYSTEM "file:///etc/passwd"><Annotations/>',
        b"<Annotations><!ENTITY x 'y'></Annotations>",
    ],
)
def test_doctype_and_entity_declarations_are_refused(payload: bytes) -> None:
    with pytest.raises(InteropError, match="(DOCTYPE|ENTITY) declaration is refused"):
        read(payload, "evil.xml")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"hello", "not an annotation file"),
        (b"{not json", "not valid JSON"),
        (b'{"type": "Polygon", "coordinates": []}', "'Polygon' is not supported"),
        (b'{"type": "FeatureCollection", "features": [], "x": NaN}', "NaN"),
        (b"<svg></svg>", "neither ASAP"),
        (b"<Annotations><Annotation>", "not well-formed XML"),
    ],
)
def test_other_content_is_refused_clearly(payload: bytes, message: str) -> None:
    with pytest.raises(InteropError, match=message):
        read(payload, "odd.bin")


def test_unknown_export_format_lists_the_known_ones() -> None:
    with pytest.raises(InteropError, match="known: geojson, asap, aperio"):
        write_annotations([MULTI], "coco")
