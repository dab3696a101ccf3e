"""COCO instance segmentation from indexed label masks (pure: numpy, scikit-image, shapely).

An instance is a 4-connected component of one class in a patch's mask; the ignore value and
background (0) are no instance. Each annotation carries its mask as uncompressed RLE (COCO's
column-major run lengths, starting with a run of zeros), so that decoding it gives the PNG
mask's pixels exactly, and beside it ``polygons``: the component's outline along pixel edges,
in patch pixel coordinates (COCO's ``[x0, y0, x1, y1, ...]``). A hole is joined to its shell by
a zero-width cut, so an even-odd fill (pycocotools') leaves it empty.

The file is assembled from parts written to disk as patches are processed
(:class:`CocoSink`), so its size never sits in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon
from skimage.measure import label as connected_components

__all__ = ["CocoSink", "component_polygons", "instances", "rle_encode"]


def rle_encode(binary: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """COCO uncompressed RLE of an ``(H, W)`` bool mask: ``{"size": [H, W], "counts": [...]}``."""
    flat = np.asarray(binary, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return {"size": list(binary.shape), "counts": []}
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return {"size": [int(binary.shape[0]), int(binary.shape[1])], "counts": counts}


def _pixel_union(binary: npt.NDArray[np.bool_]) -> Any:
    """Union of the mask's pixel squares, merged from horizontal runs (pixel-edge outline)."""
    padded = np.zeros((binary.shape[0], binary.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = binary
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)  # row-major: the i-th start and end share a run
    _, ends = np.nonzero(edges == -1)
    runs = shapely.box(starts, rows, ends, rows + 1)
    return shapely.unary_union(runs).simplify(0.0)


def _keyhole(polygon: Polygon) -> list[float]:
    """One ring of the polygon with each hole joined to the shell by a zero-width cut."""
    ring = [tuple(p) for p in polygon.exterior.coords[:-1]]
    for hole in polygon.interiors:
        points = [tuple(p) for p in hole.coords[:-1]]
        # Join the hole's first point to the nearest vertex of the ring built so far.
        hx, hy = points[0]
        nearest = min(
            range(len(ring)), key=lambda i: (ring[i][0] - hx) ** 2 + (ring[i][1] - hy) ** 2
        )
        ring = ring[: nearest + 1] + points + [points[0], ring[nearest]] + ring[nearest + 1 :]
    return [float(v) for point in ring for v in point]


def component_polygons(
    binary: npt.NDArray[np.bool_], offset: tuple[int, int] = (0, 0)
) -> list[list[float]]:
    """Outlines of a (connected) mask along pixel edges, as COCO polygons, shifted by
    ``offset`` = (x, y)."""
    geometry = _pixel_union(binary)
    parts = getattr(geometry, "geoms", [geometry])
    found = []
    for part in parts:
        if not isinstance(part, Polygon) or part.is_empty:
            continue
        coords = _keyhole(part)
        found.append(
            [round(v + (offset[0] if i % 2 == 0 else offset[1]), 3) for i, v in enumerate(coords)]
        )
    return found


def instances(mask: npt.NDArray[np.integer], ignore_value: int) -> Iterator[dict[str, Any]]:
    """COCO annotation bodies (no ids) of every instance in a patch's ``(H, W)`` class mask.

    Yields dicts with ``category_id``, ``segmentation`` (RLE), ``polygons``, ``area``
    (pixels) and ``bbox`` ``[x, y, w, h]``, by class then component label order.
    """
    for class_index in np.unique(mask):
        class_index = int(class_index)
        if class_index == 0 or class_index == ignore_value:
            continue
        components, count = connected_components(
            mask == class_index, connectivity=1, return_num=True
        )
        for n in range(1, count + 1):
            binary = components == n
            rows = np.flatnonzero(binary.any(axis=1))
            cols = np.flatnonzero(binary.any(axis=0))
            y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            yield {
                "category_id": class_index,
                "segmentation": rle_encode(binary),
                "polygons": component_polygons(binary[y0:y1, x0:x1], offset=(x0, y0)),
                "area": int(binary.sum()),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": 0,
            }


class CocoSink:
    """One split's COCO file, built from parts on disk: images and annotations are appended as
    JSON lines to temporary files and joined into one document by :meth:`chunks`."""

    def __init__(
        self, categories: Sequence[dict[str, Any]], info: dict[str, Any], workdir: str
    ) -> None:
        self.categories = list(categories)
        self.info = info
        self.n_images = 0
        self.n_annotations = 0
        self._images = tempfile.NamedTemporaryFile("w+b", dir=workdir, delete=False)
        self._annotations = tempfile.NamedTemporaryFile("w+b", dir=workdir, delete=False)

    def add_image(self, file_name: str, height: int, width: int, extra: dict[str, Any]) -> int:
        self.n_images += 1
        image = {"id": self.n_images, "file_name": file_name, "height": height, "width": width}
        self._write(self._images, {**image, **extra})
        return self.n_images

    def add_annotation(self, image_id: int, body: dict[str, Any]) -> None:
        self.n_annotations += 1
        self._write(self._annotations, {"id": self.n_annotations, "image_id": image_id, **body})

    @staticmethod
    def _write(handle: Any, obj: dict[str, Any]) -> None:
        handle.write(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode() + b"\n")

    def chunks(self) -> Iterator[bytes]:
        """The COCO JSON document, in pieces of bounded size."""
        licence = self.info.get("licence")
        licenses = [{"id": 1, "name": licence, "url": ""}] if licence else []
        head = {"info": self.info, "categories": self.categories, "licenses": licenses}
        yield json.dumps(head, sort_keys=True)[:-1].encode()
        for key, handle in (("images", self._images), ("annotations", self._annotations)):
            yield f', "{key}": ['.encode()
            handle.flush()
            handle.seek(0)
            first = True
            for line in handle:
                yield (b"" if first else b",") + line.rstrip(b"\n")
                first = False
            yield b"]"
        yield b"}"

    def close(self) -> None:
        for handle in (self._images, self._annotations):
            if not handle.closed:
                handle.close()
                os.unlink(handle.name)
