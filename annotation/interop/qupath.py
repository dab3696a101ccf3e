"""QuPath GeoJSON: read and write annotation shapes (pure: stdlib json, shapely, no Django).

Reads a FeatureCollection, a list of Features or a single Feature, in level-0 px (x right,
y down, as QuPath writes them). The class comes from ``properties.classification.name`` (or
``names``, QuPath's derived classes, joined as QuPath shows them: ``"Tumor: Positive"``), and,
when there is no classification, from ``properties.name``, where QuPath 0.5 exports put it.
Polygon and MultiPolygon features are kept; other geometry types are skipped with a reason.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from annotation.geometry import GeometryError, to_geojson, to_shapely
from annotation.interop.base import (
    ImportedShape,
    ImportResult,
    InteropError,
    check_shape_count,
    class_color,
    load_json,
)

logger = logging.getLogger(__name__)

__all__ = ["FORMAT", "geojson_from_object", "read_geojson", "write_geojson"]

FORMAT: Final = "geojson"
_POLYGONAL: Final = ("Polygon", "MultiPolygon")


def read_geojson(data: bytes | str, *, max_shapes: int | None = None) -> ImportResult:
    """Read QuPath GeoJSON bytes; raises :class:`InteropError` when the file is not GeoJSON."""
    return geojson_from_object(load_json(data), max_shapes=max_shapes)


def geojson_from_object(obj: Any, *, max_shapes: int | None = None) -> ImportResult:
    """Read already-parsed GeoJSON (FeatureCollection, list of Features, or one Feature)."""
    features = _features(obj)
    check_shape_count(len(features), max_shapes)
    result = ImportResult(format=FORMAT)
    for index, feature in enumerate(features):
        shape = _shape(feature, index, result.skipped)
        if shape is not None:
            result.shapes.append(shape)
    logger.debug("GeoJSON: %d shapes, %d skipped", len(result.shapes), len(result.skipped))
    return result


def write_geojson(shapes: Sequence[ImportedShape]) -> bytes:
    """A FeatureCollection QuPath imports as classified annotations (UTF-8 bytes)."""
    features = [_feature(shape) for shape in shapes]
    try:
        text = json.dumps({"type": "FeatureCollection", "features": features}, allow_nan=False)
    except ValueError as error:  # NaN/inf coordinates: not representable in JSON
        raise InteropError(f"cannot export shapes as GeoJSON: {error}") from None
    return text.encode("utf-8")


def _features(obj: Any) -> list[Any]:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, Mapping):
        kind = obj.get("type")
        if kind == "FeatureCollection":
            features = obj.get("features")
            if not isinstance(features, list):
                raise InteropError("GeoJSON FeatureCollection has no list of features")
            return features
        if kind == "Feature":
            return [obj]
        raise InteropError(
            f"JSON of type {kind!r} is not supported: expected a GeoJSON FeatureCollection, "
            "a list of Features or a Feature"
        )
    raise InteropError(f"JSON holding a {type(obj).__name__} is not GeoJSON")


def _shape(feature: Any, index: int, skipped: list[str]) -> ImportedShape | None:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        skipped.append(f"item {index}: not a GeoJSON Feature")
        return None
    source_id = _source_id(feature)
    label = f"feature {index}" + (f" ({source_id})" if source_id else "")
    geometry = feature.get("geometry")
    if not isinstance(geometry, Mapping):
        skipped.append(f"{label}: has no geometry")
        return None
    kind = geometry.get("type")
    if kind not in _POLYGONAL:
        skipped.append(f"{label}: {kind} geometry is not supported (only Polygon, MultiPolygon)")
        return None
    try:
        clean = to_geojson(to_shapely(geometry))
    except GeometryError as error:
        skipped.append(f"{label}: {error}")
        return None
    return ImportedShape(geometry=clean, class_name=_class_name(feature), source_id=source_id)


def _source_id(feature: Mapping[str, Any]) -> str | None:
    value = feature.get("id")
    return None if value is None else str(value)


def _class_name(feature: Mapping[str, Any]) -> str:
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        return ""
    classification = props.get("classification")
    if isinstance(classification, Mapping):
        name = classification.get("name")
        if isinstance(name, str) and name:
            return name
        names = classification.get("names")
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return ": ".join(names)
    name = props.get("name")  # QuPath 0.5 exports without a classification key
    return name if isinstance(name, str) else ""


def _feature(shape: ImportedShape) -> dict[str, Any]:
    props: dict[str, Any] = {"objectType": "annotation"}
    if shape.class_name:
        props["classification"] = {
            "name": shape.class_name,
            "color": list(class_color(shape.class_name)),
        }
    feature: dict[str, Any] = {"type": "Feature"}
    # QuPath reads "id" as a UUID; anything else would be dropped with a warning.
    if shape.source_id and _is_uuid(shape.source_id):
        feature["id"] = shape.source_id
    feature["geometry"] = shape.geometry
    feature["properties"] = props
    return feature


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
