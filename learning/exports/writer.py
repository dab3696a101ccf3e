"""Cutting regions into patches and writing them into an export archive (pure).

A region arrives whole, read once from the slide at the export's resolution
(:class:`RegionPayload`); this module cuts it into patches, encodes images and indexed masks,
adds the region's soft labels and raw per-annotator masks, and feeds the COCO and patch-index
parts, which live on disk until :meth:`ExportWriter.finish`. Nothing grows with the number of
patches but counters.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from learning.exports.archive import DeterministicZip, encode_image, encode_mask, npz_bytes
from learning.exports.coco import CocoSink, instances
from learning.exports.splits import SPLITS, patch_origins

__all__ = ["PatchSpec", "RegionPayload", "ExportWriter", "palette_bytes"]

T = TypeVar("T")
R = TypeVar("R")
_EXTENSIONS = {"png": "png", "jpeg": "jpg"}
PATCH_INDEX = "patches.csv"
_INDEX_FIELDS = [
    "split",
    "slide",
    "region",
    "image",
    "mask",
    "row",
    "col",
    "level0_x",
    "level0_y",
    "downsample",
    "ignored_pixels",
]


@dataclass(frozen=True)
class PatchSpec:
    """Patch geometry and encoding: ``patch_size`` and ``stride`` in export pixels."""

    patch_size: int
    stride: int
    image_format: str = "png"
    jpeg_quality: int = 90
    ignore_value: int = 255

    def __post_init__(self) -> None:
        if self.image_format not in _EXTENSIONS:
            raise ValueError(f"image_format must be one of {sorted(_EXTENSIONS)}")
        if not 0 < self.patch_size <= 4096 or not 0 < self.stride <= 4096:
            raise ValueError("patch_size and stride must be between 1 and 4096")


@dataclass
class RegionPayload:
    """One region at the export's resolution, ready to be cut.

    ``image`` ``(H, W, 3)`` uint8; ``labels`` ``(H, W)`` uint8 export class indices with the
    ignore value on contested pixels; ``soft`` ``(C, H, W)`` float32 class probabilities (or
    None); ``raw`` ``[(annotator pseudonym, (H, W) uint8 mask)]``; ``origin`` the level-0 corner
    of the grid and ``downsample`` level-0 pixels per export pixel.
    """

    key: str
    slide: str
    split: str
    origin: tuple[float, float]
    downsample: float
    image: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.uint8]
    soft: npt.NDArray[np.float32] | None = None
    raw: list[tuple[str, npt.NDArray[np.uint8]]] = field(default_factory=list)


def palette_bytes(colors: Sequence[tuple[int, int, int]], ignore_value: int) -> bytes:
    """A 256-entry PNG palette: class ``i`` in ``colors[i]``, the ignore value black, rest grey."""
    table = [(128, 128, 128)] * 256
    for index, color in enumerate(colors):
        table[index] = tuple(int(c) for c in color)
    table[ignore_value] = (0, 0, 0)
    return bytes(v for rgb in table for v in rgb)


def _ordered_map(
    pool: ThreadPoolExecutor | None, fn: Callable[[T], R], items: list[T], ahead: int = 8
) -> Iterator[R]:
    """``map(fn, items)`` in order, at most ``ahead`` items computed ahead of the consumer."""
    if pool is None:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _pad(array: np.ndarray, size: int, value: int) -> np.ndarray:
    if array.shape[0] == size and array.shape[1] == size:
        return array
    out = np.full((size, size, *array.shape[2:]), value, dtype=array.dtype)
    out[: array.shape[0], : array.shape[1]] = array
    return out


class ExportWriter:
    """Writes regions' patches, masks, soft labels and raw masks; then COCO and the index."""

    def __init__(
        self,
        archive: DeterministicZip,
        spec: PatchSpec,
        categories: Sequence[dict[str, Any]],
        palette: bytes,
        workdir: str,
        coco_info: dict[str, Any],
        workers: int = 2,
    ) -> None:
        self.archive = archive
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self.spec = spec
        self.palette = palette
        self.n_classes = len(categories) + 1  # categories exclude background
        self.coco = {s: CocoSink(categories, {**coco_info, "split": s}, workdir) for s in SPLITS}
        self._index = tempfile.NamedTemporaryFile("w+", dir=workdir, delete=False, newline="")
        self._csv = csv.writer(self._index, lineterminator="\n")
        self._csv.writerow(_INDEX_FIELDS)
        self.counts: dict[str, dict[str, Any]] = {
            s: {
                "patches": 0,
                "regions": 0,
                "pixels": defaultdict(int),
                "instances": defaultdict(int),
            }
            for s in SPLITS
        }

    def add_region(self, region: RegionPayload) -> int:
        """Cut and write one region; returns the number of patches written."""
        spec = self.spec
        size, ext = spec.patch_size, _EXTENSIONS[spec.image_format]
        height, width = region.labels.shape
        if region.image.shape[:2] != (height, width):
            raise ValueError(f"image {region.image.shape} and labels {region.labels.shape} differ")
        counts = self.counts[region.split]
        counts["regions"] += 1
        sink = self.coco[region.split]
        written = 0
        positions = [
            (row, col)
            for row in patch_origins(height, size, spec.stride)
            for col in patch_origins(width, size, spec.stride)
        ]

        def cut(position: tuple[int, int]) -> tuple[np.ndarray, bytes, bytes]:
            row, col = position
            image = _pad(region.image[row : row + size, col : col + size], size, 255)
            mask = _pad(region.labels[row : row + size, col : col + size], size, spec.ignore_value)
            return (
                mask,
                encode_image(image, spec.image_format, spec.jpeg_quality),
                encode_mask(mask, self.palette),
            )

        # zlib and numpy release the GIL: the encoding of the next patches overlaps the COCO
        # work on this one. Results come back in order, so the archive does not depend on it.
        encoded = _ordered_map(self._pool, cut, positions)
        for (row, col), (mask, image_bytes, mask_bytes) in zip(positions, encoded, strict=True):
            stem = f"{region.split}/{region.slide}/{region.key}/y{row:05d}_x{col:05d}"
            image_name, mask_name = f"images/{stem}.{ext}", f"masks/{stem}.png"
            self.archive.add_bytes(image_name, image_bytes)
            self.archive.add_bytes(mask_name, mask_bytes)
            x0 = region.origin[0] + col * region.downsample
            y0 = region.origin[1] + row * region.downsample
            image_id = sink.add_image(
                image_name,
                size,
                size,
                {
                    "mask_file": mask_name,
                    "slide": region.slide,
                    "region": region.key,
                    "level0_x": round(x0, 3),
                    "level0_y": round(y0, 3),
                    "downsample": round(region.downsample, 9),
                },
            )
            for body in instances(mask, spec.ignore_value):
                sink.add_annotation(image_id, body)
                counts["instances"][body["category_id"]] += 1
            pixels = np.bincount(mask.ravel(), minlength=256)
            for value in np.flatnonzero(pixels):
                key = "ignore" if value == spec.ignore_value else int(value)
                counts["pixels"][key] += int(pixels[value])
            self._csv.writerow(
                [
                    region.split,
                    region.slide,
                    region.key,
                    image_name,
                    mask_name,
                    row,
                    col,
                    round(x0, 3),
                    round(y0, 3),
                    round(region.downsample, 9),
                    int(pixels[spec.ignore_value]),
                ]
            )
            written += 1
        counts["patches"] += written
        base = f"{region.slide}/{region.key}"
        if region.soft is not None:
            self.archive.add_bytes(
                f"soft_labels/{base}.npz",
                npz_bytes({"probability": region.soft.astype(np.float32, copy=False)}),
            )
        for annotator, raw in region.raw:
            self.archive.add_bytes(
                f"raw_masks/{base}/{annotator}.png", encode_mask(raw, self.palette)
            )
        return written

    def finish(self) -> dict[str, Any]:
        """Write ``coco/<split>.json`` and the patch index; returns the counts per split."""
        try:
            for split, sink in self.coco.items():
                self.archive.add_stream(f"coco/{split}.json", sink.chunks())
            self._index.flush()
            self.archive.add_file(PATCH_INDEX, self._index.name)
        finally:
            self.close()
        return {
            split: {
                "patches": c["patches"],
                "regions": c["regions"],
                "pixels": {str(k): v for k, v in sorted(c["pixels"].items(), key=str)},
                "instances": {str(k): v for k, v in sorted(c["instances"].items())},
            }
            for split, c in self.counts.items()
        }

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for sink in self.coco.values():
            sink.close()
        if not self._index.closed:
            self._index.close()
            os.unlink(self._index.name)


def read_index(data: bytes) -> list[dict[str, str]]:
    """Rows of a ``patches.csv`` (for tests and loaders)."""
    return list(csv.DictReader(io.StringIO(data.decode())))
