"""Polygons a simulated person draws on a region, from the ground truth (pure: shapely, numpy).

Ground truth comes in as ``(class name, shapely geometry)`` pairs in level-0 px, painted in
order (a later class wins where shapes overlap, as ``annotation.rasterize`` paints). A person
clips each object to the region, may miss it (per-class sensitivity, more often when small),
may give it another class, outlines it with boundary noise (a random buffer, vertex noise and a
simplify), and may add spurious blobs (1 - specificity). The output is GeoJSON, the same input
a person's browser sends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry

from learning.simulation.profiles import Person

Truth = Sequence[tuple[str, BaseGeometry]]
Region = tuple[int, int, int, int]  # x, y, width, height (level-0 px)


def _parts(geom: BaseGeometry) -> list[Polygon]:
    return [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]


def _noisy(poly: Polygon, jitter: float, overdraw: float, rng: np.random.Generator) -> BaseGeometry:
    """The outline of ``poly`` as a hurried hand draws it: grown or shrunk, wobbly, simplified."""
    if jitter <= 0 and overdraw == 0:
        return poly
    grown = poly.buffer(float(rng.normal(overdraw, jitter)), join_style="mitre")
    out = []
    for part in _parts(grown):
        ring = np.asarray(part.exterior.coords)[:-1]
        ring = ring + rng.normal(0.0, jitter * 0.3, size=ring.shape)
        if len(ring) < 3:
            continue
        holes = [np.asarray(h.coords)[:-1] for h in part.interiors if len(h.coords) > 3]
        out.append(shapely.make_valid(Polygon(ring, holes)))
    if not out:
        return Polygon()
    return shapely.union_all(out).simplify(jitter * 0.5)


def _blob(region: Region, size: float, rng: np.random.Generator) -> BaseGeometry:
    x, y, w, h = region
    cx, cy = rng.uniform(x, x + w), rng.uniform(y, y + h)
    radius = max(2.0, rng.uniform(0.3, 1.0) * size)
    return Point(cx, cy).buffer(radius, quad_segs=4)


def draw_shapes(
    truth: Truth,
    region: Region,
    person: Person,
    classes: Sequence[str],
    rng: np.random.Generator,
) -> list[tuple[str, dict[str, Any]]]:
    """``(class name, GeoJSON)`` shapes the person submits for ``region``, in painting order."""
    x, y, w, h = region
    frame = box(x, y, x + w, y + h)
    drawn: dict[str, list[BaseGeometry]] = {c: [] for c in classes}
    sizes: dict[str, list[float]] = {c: [] for c in classes}
    for name, geom in truth:
        if name not in drawn or not geom.intersects(frame):
            continue
        for part in _parts(geom.intersection(frame)):
            sizes[name].append(math.sqrt(part.area))
            p_miss = 1.0 - person.sensitivity.get(name, 1.0)
            if part.area < person.small_area:
                p_miss = 1.0 - (1.0 - p_miss) * (1.0 - person.miss_small)
            if rng.random() < p_miss:
                continue
            label = name
            if len(classes) > 1 and rng.random() < person.wrong_class:
                label = str(rng.choice([c for c in classes if c != name]))
            drawn[label].append(_noisy(part, person.jitter, person.overdraw, rng))
    for name in classes:
        if rng.random() < person.false_positive.get(name, 0.0):
            typical = float(np.median(sizes[name])) if sizes[name] else min(w, h) / 6
            drawn[name].append(_blob(region, min(typical, min(w, h) / 3), rng))
    shapes = []
    for name in classes:  # painting order follows the class order, as the ground truth's
        geoms = [g.intersection(frame) for g in drawn[name] if not g.is_empty]
        for part in _parts(shapely.union_all(geoms)) if geoms else []:
            if part.area >= 1.0:
                shapes.append((name, mapping(part)))
    return shapes
