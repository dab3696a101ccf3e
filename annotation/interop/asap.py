"""ASAP XML: read and write annotation shapes (pure: stdlib ElementTree, no Django).

Layout: ``ASAP_Annotations/Annotations/Annotation[@Name, @Type, @PartOfGroup]/Coordinates/
Coordinate[@Order, @X, @Y]`` in level-0 px (x right, y down), plus ``AnnotationGroups``.
A group becomes the class (``PartOfGroup="None"``, ASAP's "no group", reads as unclassified
``""``). Polygon, Spline and Rectangle annotations are read as polygons; Dot, PointSet and
Measurement are skipped with a reason.

ASAP has no holes and no multi-part shapes. On export a MultiPolygon becomes one annotation per
part (named ``"<name> part <k>"``; it reads back as separate shapes), and each hole becomes an
annotation in the group :data:`HOLE_GROUP` named ``"<parent name> hole <k>"``; on import such
annotations are put back as interior rings of the annotation they name.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any, Final

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

__all__ = ["FORMAT", "HOLE_GROUP", "asap_from_element", "read_asap", "write_asap"]

FORMAT: Final = "asap"
ROOT_TAG: Final = "ASAP_Annotations"
HOLE_GROUP: Final = "histocrowd:hole"
NO_GROUP: Final = "None"
_POLYGONAL: Final = ("Polygon", "Spline", "Rectangle")
_HOLE_SEPARATOR: Final = " hole "
_HOLE_COLOR: Final = "#FFFFFF"


def read_asap(data: bytes, *, max_shapes: int | None = None) -> ImportResult:
    """Read ASAP XML bytes (DOCTYPE/ENTITY refused, see :func:`parse_xml`)."""
    return asap_from_element(parse_xml(data), max_shapes=max_shapes)


def asap_from_element(root: ET.Element, *, max_shapes: int | None = None) -> ImportResult:
    """Read a parsed ``<ASAP_Annotations>`` element."""
    annotations = root.findall("./Annotations/Annotation")
    check_shape_count(len(annotations), max_shapes)
    result = ImportResult(format=FORMAT)
    shells: dict[str, tuple[str, Ring, str]] = {}  # name -> (class, shell, source id)
    order: list[str] = []
    holes: list[tuple[str, Ring]] = []
    for index, element in enumerate(annotations):
        name = element.get("Name") or f"Annotation {index}"
        ring = _read_ring(element, name, result.skipped)
        if ring is None:
            continue
        group = element.get("PartOfGroup", NO_GROUP)
        if group == HOLE_GROUP:
            holes.append((name, ring))
            continue
        key = name if name not in shells else f"{name}#{index}"
        shells[key] = ("" if group == NO_GROUP else group, ring, element.get("Name") or "")
        order.append(key)
    rings_by_parent = _attach_holes(holes, shells, result.skipped)
    for key in order:
        class_name, shell, source_id = shells[key]
        try:
            geometry = polygon_geojson(shell, rings_by_parent.get(key, []))
        except GeometryError as error:
            result.skipped.append(f"annotation {key!r}: {error}")
            continue
        result.shapes.append(ImportedShape(geometry, class_name, source_id or None))
    logger.debug("ASAP: %d shapes, %d skipped", len(result.shapes), len(result.skipped))
    return result


def write_asap(shapes: Sequence[ImportedShape]) -> bytes:
    """ASAP XML with one annotation per polygon part and one group per class (UTF-8 bytes)."""
    root = ET.Element(ROOT_TAG)
    container = ET.SubElement(root, "Annotations")
    groups: dict[str, str] = {}
    for name, shape in zip(_unique_names(shapes), shapes, strict=True):
        group = shape.class_name or NO_GROUP
        parts = list(polygons_of(shape.geometry))
        for k, (shell, holes) in enumerate(parts):
            part_name = name if len(parts) == 1 else f"{name} part {k}"
            _annotation(container, part_name, group, shell, _hex(shape.class_name))
            for j, hole in enumerate(holes):
                hole_name = f"{part_name}{_HOLE_SEPARATOR}{j}"
                _annotation(container, hole_name, HOLE_GROUP, hole, _HOLE_COLOR)
                groups.setdefault(HOLE_GROUP, _HOLE_COLOR)
        if group != NO_GROUP:
            groups.setdefault(group, _hex(shape.class_name))
    group_list = ET.SubElement(root, "AnnotationGroups")
    for group, color in groups.items():
        element = ET.SubElement(group_list, "Group", Name=group, PartOfGroup=NO_GROUP, Color=color)
        ET.SubElement(element, "Attributes")
    ET.indent(root, space="\t")
    return b'<?xml version="1.0"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _read_ring(element: ET.Element, name: str, skipped: list[str]) -> Ring | None:
    kind = element.get("Type", "")
    if kind not in _POLYGONAL:
        skipped.append(
            f"annotation {name!r}: type {kind!r} is not supported "
            "(only Polygon, Spline and Rectangle)"
        )
        return None
    # A Spline is ASAP's smooth curve through its control points; we keep the control points
    # as the polygon. That is an approximation: the drawn curve bulges slightly between them.
    points: list[tuple[int, int, float, float]] = []
    for position, coordinate in enumerate(element.findall("./Coordinates/Coordinate")):
        try:
            order = coordinate.get("Order")
            rank = int(order) if order is not None else position
            x = parse_number(coordinate.get("X"), f"coordinate {position} X")
            y = parse_number(coordinate.get("Y"), f"coordinate {position} Y")
        except ValueError as error:
            skipped.append(f"annotation {name!r}: {error}")
            return None
        points.append((rank, position, x, y))
    points.sort()  # by Order; document order breaks ties
    ring = [(x, y) for _, _, x, y in points]
    if len(set(ring)) < 3:
        skipped.append(f"annotation {name!r}: fewer than 3 distinct coordinates")
        return None
    return ring


def _attach_holes(
    holes: list[tuple[str, Ring]],
    shells: dict[str, tuple[str, Ring, str]],
    skipped: list[str],
) -> dict[str, list[Ring]]:
    by_parent: dict[str, list[Ring]] = {}
    for name, ring in holes:
        parent = name.rsplit(_HOLE_SEPARATOR, 1)[0]
        if parent not in shells or _HOLE_SEPARATOR not in name:
            skipped.append(f"hole {name!r}: no annotation named {parent!r} to cut it from")
            continue
        by_parent.setdefault(parent, []).append(ring)
    return by_parent


def _annotation(container: ET.Element, name: str, group: str, ring: Ring, color: str) -> None:
    attributes = {"Name": name, "Type": "Polygon", "PartOfGroup": group, "Color": color}
    element = ET.SubElement(container, "Annotation", attributes)
    coordinates = ET.SubElement(element, "Coordinates")
    for order, (x, y) in enumerate(ring):
        ET.SubElement(
            coordinates,
            "Coordinate",
            Order=str(order),
            X=format_number(x),
            Y=format_number(y),
        )


def _unique_names(shapes: Sequence[ImportedShape]) -> list[str]:
    """The source id where it is unique in this export (so holes find their parent)."""
    ids = [shape.source_id for shape in shapes]
    counts: dict[Any, int] = {}
    for value in ids:
        counts[value] = counts.get(value, 0) + 1
    names = []
    for index, value in enumerate(ids):
        ok = value and counts[value] == 1 and _HOLE_SEPARATOR not in value and " part " not in value
        names.append(value if ok else f"Annotation {index}")
    # A fallback name may still collide with a real source id; make every name distinct.
    seen: set[str] = set()
    for index, name in enumerate(names):
        while name in seen:
            name = f"{name}#"
        names[index] = name
        seen.add(name)
    return names


def _hex(class_name: str) -> str:
    return "#{:02X}{:02X}{:02X}".format(*class_color(class_name))
