"""Agreement of two annotators' shape sets, exactly, on polygons (pure shapely)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shapely import unary_union
from shapely.geometry import shape as to_shape


def _by_class(shapes: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[int, object]:
    grouped: dict[int, list[object]] = {}
    for class_id, geometry in shapes:
        grouped.setdefault(class_id, []).append(to_shape(geometry))
    return {cls: unary_union(parts) for cls, parts in grouped.items()}


def shapes_dice(
    first: Iterable[tuple[int, Mapping[str, Any]]],
    second: Iterable[tuple[int, Mapping[str, Any]]],
) -> float:
    """Mean over classes of Dice = 2|A∩B| / (|A| + |B|) between two sets of (class, GeoJSON).

    Classes drawn by neither side do not count; two empty sets agree fully (1.0), the
    convention of annotation.agreement for raters who both mark nothing.
    """
    a, b = _by_class(first), _by_class(second)
    classes = set(a) | set(b)
    if not classes:
        return 1.0
    scores = []
    for cls in classes:
        area_a = a[cls].area if cls in a else 0.0
        area_b = b[cls].area if cls in b else 0.0
        if cls in a and cls in b:
            both = a[cls].intersection(b[cls]).area
        else:
            both = 0.0
        scores.append(2 * both / (area_a + area_b) if area_a + area_b > 0 else 1.0)
    return sum(scores) / len(scores)
