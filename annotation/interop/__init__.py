"""Annotation files in and out: QuPath GeoJSON, ASAP XML, Aperio ImageScope XML (pure, no Django).

:func:`read_annotations` sniffs the format from the content (the file name only labels
messages), refuses oversized files and files with too many shapes, and returns an
:class:`ImportResult` of polygonal shapes in level-0 px (x right, y down) with a reason for every
item left out. :func:`write_annotations` writes shapes in one of :data:`FORMATS`; an export reads
back to the same geometry (see each module for what a format cannot hold).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from annotation.interop.aperio import aperio_from_element, write_aperio
from annotation.interop.asap import asap_from_element, write_asap
from annotation.interop.base import (
    ImportedShape,
    ImportResult,
    InteropError,
    load_json,
    parse_xml,
)
from annotation.interop.qupath import geojson_from_object, write_geojson

logger = logging.getLogger(__name__)

__all__ = [
    "FORMATS",
    "ImportResult",
    "ImportedShape",
    "InteropError",
    "read_annotations",
    "write_annotations",
]

FORMATS: Final = ("geojson", "asap", "aperio")
DARWIN_MESSAGE: Final = "V7 Darwin JSON is not supported: export GeoJSON from V7 or QuPath"
_WRITERS: Final = {"geojson": write_geojson, "asap": write_asap, "aperio": write_aperio}
_BOMS: Final = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def read_annotations(
    data: bytes, filename: str, *, max_bytes: int, max_shapes: int
) -> ImportResult:
    """Read an annotation file of any supported format.

    Raises :class:`InteropError` (a ValueError) naming the file for: more than ``max_bytes``
    bytes, more than ``max_shapes`` shapes, V7 Darwin JSON, XML with a DOCTYPE/ENTITY
    declaration, and anything that is not GeoJSON, ASAP XML or Aperio XML.
    """
    if len(data) > max_bytes:
        raise InteropError(
            f"{filename}: file is {len(data):,} bytes, more than the limit of {max_bytes:,}"
        )
    try:
        result = _read(data, max_shapes)
    except InteropError as error:
        raise InteropError(f"{filename}: {error}") from None
    logger.info(
        "%s: read %d %s shapes, skipped %d",
        filename,
        len(result.shapes),
        result.format,
        len(result.skipped),
    )
    return result


def write_annotations(shapes: Sequence[ImportedShape], fmt: str) -> bytes:
    """Encode shapes as ``fmt`` (one of :data:`FORMATS`); UTF-8 bytes."""
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise InteropError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    return writer(shapes)


def _read(data: bytes, max_shapes: int) -> ImportResult:
    first = _first_character(data)
    if first in (b"{", b"["):
        obj = load_json(data)
        if _is_darwin(obj):
            raise InteropError(DARWIN_MESSAGE)
        return geojson_from_object(obj, max_shapes=max_shapes)
    if first == b"<":
        root = parse_xml(data)
        tag = root.tag.rsplit("}", 1)[-1]  # ignore a namespace, if any
        if tag == "ASAP_Annotations":
            return asap_from_element(root, max_shapes=max_shapes)
        if tag == "Annotations":
            return aperio_from_element(root, max_shapes=max_shapes)
        raise InteropError(
            f"XML root <{tag}> is neither ASAP (<ASAP_Annotations>) "
            "nor Aperio ImageScope (<Annotations>)"
        )
    raise InteropError(
        "not an annotation file: expected GeoJSON (QuPath), ASAP XML or Aperio ImageScope XML"
    )


def _first_character(data: bytes) -> bytes:
    """The first significant byte; UTF-16/32 NULs and byte-order marks are ignored."""
    head = data[:4096]
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    head = head.replace(b"\x00", b"").lstrip(b" \t\r\n")
    return head[:1]


def _is_darwin(obj: Any) -> bool:
    """V7 Darwin JSON 1.0 ("image", "dataset") or 2.0 ("item", a darwin ``schema_ref``)."""
    if not isinstance(obj, Mapping) or "annotations" not in obj:
        return False
    schema = str(obj.get("schema_ref", ""))
    return "darwin" in schema or "item" in obj or "image" in obj or "dataset" in obj
