"""Aperio ImageScope XML: read and write annotation shapes (pure: stdlib ElementTree, no Django).

Layout: ``Annotations/Annotation[@Id, @Name]/Regions/Region[@Id, @Type, @NegativeROI]/Vertices/
Vertex[@X, @Y]`` in level-0 px (x right, y down). An Annotation is a layer: its ``Name`` (else
its first ``Attributes/Attribute/@Name``, else ``"Annotation <Id>"``) is the class of all its
regions. Region types 0 (free-hand polygon) and 1 (rectangle) are read as polygons; ellipses,
arrows, rulers and other types are skipped with a reason. A region with ``NegativeROI="1"`` is
a hole: it becomes an interior ring of every region of the same annotation it overlaps, so the
shape as drawn is kept and :func:`annotation.geometry.clean_geometry` later subtracts it.

On export each class is one Annotation; a polygon with holes gets an Annotation of its own
(same Name) so its negative regions cut only it. A MultiPolygon is written as one region per
part and reads back as separate shapes (ImageScope has no multi-part region).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Final

import shapely
from shapely.errors import GEOSException
from shapely.geometry import Polygon

from annotation.geometry import GeometryError
from annotation.interop.base import (
    ImportedShape,
    ImportResult,
    Ring,
    check_shape_count,
    class_color,
    format_number,
    parse_number,
    parse_xml,
    polygon_geojson,
    polygons_of,
)

logger = logging.getLogger(__name__)

__all__ = ["FORMAT", "aperio_from_element", "read_aperio", "write_aperio"]

FORMAT: Final = "aperio"
ROOT_TAG: Final = "Annotations"
_REGION_KINDS: Final = {"0": "polygon", "1": "rectangle", "2": "ellipse", "3": "arrow"}
_POLYGONAL: Final = ("0", "1")

Labelled = tuple[str, Ring]  # ("<annotation id>/<region id>", ring)


def read_aperio(data: bytes, *, max_shapes: int | None = None) -> ImportResult:
    """Read Aperio ImageScope XML bytes (DOCTYPE/ENTITY refused, see :func:`parse_xml`)."""
    return aperio_from_element(parse_xml(data), max_shapes=max_shapes)


def aperio_from_element(root: ET.Element, *, max_shapes: int | None = None) -> ImportResult:
    """Read a parsed ``<Annotations>`` element; every Region counts towards ``max_shapes``."""
    annotations = root.findall("./Annotation")
    check_shape_count(sum(len(a.findall("./Regions/Region")) for a in annotations), max_shapes)
    result = ImportResult(format=FORMAT)
    for index, annotation in enumerate(annotations):
        annotation_id = annotation.get("Id") or str(index + 1)
        class_name = _class_name(annotation, annotation_id)
        positives: list[Labelled] = []
        negatives: list[Labelled] = []
        for r_index, region in enumerate(annotation.findall("./Regions/Region")):
            key = f"{annotation_id}/{region.get('Id') or r_index + 1}"
            ring = _read_ring(region, key, result.skipped)
            if ring is not None:
                negative = region.get("NegativeROI", "0").strip() == "1"
                (negatives if negative else positives).append((key, ring))
        result.shapes.extend(_with_holes(class_name, positives, negatives, result.skipped))
    logger.debug("Aperio: %d shapes, %d skipped", len(result.shapes), len(result.skipped))
    return result


def write_aperio(shapes: Sequence[ImportedShape]) -> bytes:
    """ImageScope XML: one Annotation per class, plus one per polygon with holes (UTF-8)."""
    layers: dict[str, list[tuple[Ring, list[Ring]]]] = {}
    holed: list[tuple[str, Ring, list[Ring]]] = []
    for shape in shapes:
        for shell, holes in polygons_of(shape.geometry):
            if holes:
                holed.append((shape.class_name, shell, holes))
            else:
                layers.setdefault(shape.class_name, []).append((shell, []))
    root = ET.Element(ROOT_TAG, MicronsPerPixel="0")
    groups = [*layers.items(), *((name, [(shell, holes)]) for name, shell, holes in holed)]
    for annotation_id, (class_name, polygons) in enumerate(groups, start=1):
        _write_annotation(root, annotation_id, class_name, polygons)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _class_name(annotation: ET.Element, annotation_id: str) -> str:
    name = (annotation.get("Name") or "").strip()
    if name:
        return name
    for attribute in annotation.findall("./Attributes/Attribute"):
        name = (attribute.get("Name") or "").strip()
        if name:
            return name
    return f"Annotation {annotation_id}"


def _read_ring(region: ET.Element, key: str, skipped: list[str]) -> Ring | None:
    label = f"annotation {key.replace('/', ' region ')}"
    kind = (region.get("Type") or "0").strip()
    if kind not in _POLYGONAL:
        name = _REGION_KINDS.get(kind, f"type {kind}")
        skipped.append(f"{label}: {name} regions are not supported (only polygons, rectangles)")
        return None
    ring: Ring = []
    for k, vertex in enumerate(region.findall("./Vertices/Vertex")):
        try:
            ring.append(
                (
                    parse_number(vertex.get("X"), f"vertex {k} X"),
                    parse_number(vertex.get("Y"), f"vertex {k} Y"),
                )
            )
        except ValueError as error:
            skipped.append(f"{label}: {error}")
            return None
    if kind == "1" and len(ring) == 2:  # a rectangle given by two opposite corners
        (x0, y0), (x1, y1) = ring
        ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if len(set(ring)) < 3:
        skipped.append(f"{label}: fewer than 3 distinct vertices")
        return None
    return ring


def _with_holes(
    class_name: str, positives: list[Labelled], negatives: list[Labelled], skipped: list[str]
) -> list[ImportedShape]:
    shapes = []
    used: set[str] = set()
    for key, shell in positives:
        holes = []
        for hole_key, hole in negatives:
            if _overlaps(shell, hole):
                holes.append(hole)
                used.add(hole_key)
        try:
            geometry = polygon_geojson(shell, holes)
        except GeometryError as error:
            skipped.append(f"annotation {key.replace('/', ' region ')}: {error}")
            continue
        shapes.append(ImportedShape(geometry, class_name, key))
    for hole_key, _ in negatives:
        if hole_key not in used:
            skipped.append(
                f"annotation {hole_key.replace('/', ' region ')}: negative region overlaps "
                "no region of its annotation"
            )
    return shapes


def _overlaps(shell: Ring, hole: Ring) -> bool:
    a, b = Polygon(shell), Polygon(hole)
    try:
        return bool(shapely.intersects(a, b))
    except GEOSException:  # drawn rings may self-intersect; fall back to bounding boxes
        ax0, ay0, ax1, ay1 = a.bounds
        bx0, by0, bx1, by1 = b.bounds
        return ax0 <= bx1 and bx0 <= ax1 and ay0 <= by1 and by0 <= ay1


def _write_annotation(
    root: ET.Element, annotation_id: int, class_name: str, polygons: list[tuple[Ring, list[Ring]]]
) -> None:
    r, g, b = class_color(class_name)
    annotation = ET.SubElement(
        root,
        "Annotation",
        Id=str(annotation_id),
        Name=class_name,
        ReadOnly="0",
        Incremental="0",
        Type="4",
        LineColor=str(r + 256 * g + 65536 * b),  # a Windows COLORREF: 0x00BBGGRR
        Visible="1",
        Selected="0",
    )
    attributes = ET.SubElement(annotation, "Attributes")
    ET.SubElement(attributes, "Attribute", Name=class_name, Id="0", Value="")
    regions = ET.SubElement(annotation, "Regions")
    ET.SubElement(regions, "RegionAttributeHeaders")
    region_id = 0
    for shell, holes in polygons:
        for ring, negative in [(shell, False), *((hole, True) for hole in holes)]:
            region_id += 1
            _write_region(regions, region_id, ring, negative)
    ET.SubElement(annotation, "Plots")


def _write_region(regions: ET.Element, region_id: int, ring: Ring, negative: bool) -> None:
    region = ET.SubElement(
        regions,
        "Region",
        Id=str(region_id),
        Type="0",
        Zoom="1",
        Selected="0",
        Text="",
        NegativeROI="1" if negative else "0",
        Analyze="1",
        DisplayId=str(region_id),
    )
    ET.SubElement(region, "Attributes")
    vertices = ET.SubElement(region, "Vertices")
    for x, y in ring:
        ET.SubElement(vertices, "Vertex", X=format_number(x), Y=format_number(y), Z="0")
