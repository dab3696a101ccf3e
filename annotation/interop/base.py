"""Shared pieces of the annotation importers and exporters (pure: stdlib, shapely, no Django).

Coordinates everywhere are level-0 pixels of the slide, x to the right, y down. Importers keep
shapes as drawn (closed rings, plain floats, possibly invalid); validation and repair belong to
:func:`annotation.geometry.clean_geometry`, which runs when a shape is saved.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from shapely.geometry import MultiPolygon, Polygon

from annotation.geometry import GeometryError, to_geojson, to_shapely

__all__ = [
    "ImportResult",
    "ImportedShape",
    "InteropError",
    "check_shape_count",
    "class_color",
    "format_number",
    "load_json",
    "parse_number",
    "parse_xml",
    "polygon_geojson",
    "polygons_of",
]

Point = tuple[float, float]
Ring = list[Point]

# A strict decimal: float() alone would also accept "nan", "inf" and "1_000".
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FORBIDDEN_XML: Final = (b"<!DOCTYPE", b"<!ENTITY")


class InteropError(ValueError):
    """A file that cannot be imported or shapes that cannot be exported; says why."""


@dataclass(frozen=True)
class ImportedShape:
    """One polygonal shape read from a file.

    ``geometry`` is a GeoJSON Polygon/MultiPolygon dict in level-0 px (closed rings, floats);
    ``class_name`` is ``""`` for an unclassified shape; ``source_id`` is the file's own id.
    """

    geometry: dict[str, Any]
    class_name: str
    source_id: str | None = None


@dataclass
class ImportResult:
    """The shapes of one file, the reason for every item left out, and the format read."""

    shapes: list[ImportedShape] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    format: str = ""

    @property
    def class_names(self) -> list[str]:
        """Distinct class names, sorted."""
        return sorted({shape.class_name for shape in self.shapes})


def check_shape_count(count: int, max_shapes: int | None) -> None:
    """Refuse a file before converting its geometry when it holds too many items."""
    if max_shapes is not None and count > max_shapes:
        raise InteropError(f"file has {count} shapes, more than the limit of {max_shapes}")


def parse_xml(data: bytes) -> ET.Element:
    """Parse XML, refusing DOCTYPE/ENTITY declarations (entity-expansion attacks).

    Annotation exports never need a DTD. The check ignores NUL bytes so UTF-16/32 files cannot
    hide a declaration between them.
    """
    probe = data.replace(b"\x00", b"").upper()
    for marker in _FORBIDDEN_XML:
        if marker in probe:
            raise InteropError(
                f"XML with a {marker.decode()[2:]} declaration is refused "
                "(entity expansion); annotation files never need one"
            )
    try:
        return ET.fromstring(data)
    except ET.ParseError as error:
        raise InteropError(f"not well-formed XML: {error}") from None


def load_json(data: bytes | str) -> Any:
    """Parse JSON strictly (no NaN/Infinity literals), as an :class:`InteropError` on failure."""

    def refuse(name: str) -> Any:
        raise InteropError(f"JSON contains {name}, which is not valid JSON")

    try:
        return json.loads(data, parse_constant=refuse)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InteropError(f"not valid JSON: {error}") from None
    except RecursionError:
        raise InteropError("JSON is nested too deeply") from None


def parse_number(text: str | None, what: str) -> float:
    """A coordinate from XML text; ``"1234,5"`` (decimal comma, no dot) reads as 1234.5.

    Raises ValueError naming ``what`` for a missing, non-numeric or non-finite value.
    """
    if text is None:
        raise ValueError(f"{what} is missing")
    cleaned = text.strip()
    # Some exports written under a European locale use a decimal comma.
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    if not _NUMBER.fullmatch(cleaned):
        raise ValueError(f"{what} is not a number: {text!r}")
    value = float(cleaned)
    if not math.isfinite(value):
        raise ValueError(f"{what} is too large: {text!r}")
    return value


def format_number(value: float) -> str:
    """Shortest text that reads back to exactly ``value`` (integers without ``.0``)."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def polygon_geojson(shell: Ring, holes: Sequence[Ring] = ()) -> dict[str, Any]:
    """GeoJSON Polygon from rings as drawn (closed, floats); GeometryError if degenerate."""
    body = {"type": "Polygon", "coordinates": [[list(p) for p in r] for r in (shell, *holes)]}
    return to_geojson(to_shapely(body))


def polygons_of(geometry: dict[str, Any]) -> Iterator[tuple[Ring, list[Ring]]]:
    """(shell, holes) of each polygon of a GeoJSON geometry, rings without the closing point."""
    try:
        geom = to_shapely(geometry)
    except GeometryError as error:
        raise InteropError(f"cannot export shape: {error}") from None
    parts = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    for part in parts:
        assert isinstance(part, Polygon)
        rings = [_open(ring.coords) for ring in (part.exterior, *part.interiors)]
        yield rings[0], rings[1:]


def class_color(name: str) -> tuple[int, int, int]:
    """A stable RGB colour per class name, so exports of one project look alike."""
    digest = hashlib.sha1(name.encode()).digest()
    return digest[0], digest[1], digest[2]


def _open(coords: Any) -> Ring:
    points = [(float(x), float(y)) for x, y, *_ in coords]
    return points[:-1] if len(points) > 1 and points[0] == points[-1] else points
