"""Synthetic whole-slide images with exact ground truth (pure: numpy, shapely, tifffile).

A slide is an H&E-like pyramidal JPEG TIFF that OpenSlide opens as "generic-tiff", with a
label-mask pyramid (``.mask.tiff``, uint8 class ids, deflate) and the same objects as QuPath-style
GeoJSON beside it. Objects are generated once per spec (``synthetic_scene``) and rasterised tile
by tile (``synthetic_render``), so a 20k x 20k slide never sits in memory; lower levels are
2x box-filtered from the level above through a disk-backed buffer. Same spec, same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
import tifffile

from slides.synthetic_render import render_labels, render_rgb
from slides.synthetic_scene import PolygonSet, Scene, build_scene

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, ...] = ("background", "tissue", "gland", "nucleus")
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (80, 200, 120),
    (230, 80, 40),
    (40, 60, 220),
)
_MIN_LEVEL_SIDE = 1024  # stop the pyramid once the long side is at most this
_RENDER_BLOCK = 1024  # render_region works in blocks this big to bound its memory
_IN_MEMORY_BYTES = 64 << 20  # pyramid levels smaller than this are buffered in RAM, not on disk


@dataclass(frozen=True)
class SyntheticSpec:
    """What to draw: size in level-0 px, seed, resolution (micrometres per pixel), densities."""

    width: int
    height: int
    seed: int = 0
    mpp: float = 0.5
    tile_size: int = 256
    jpeg_quality: int = 85
    tissue_blobs: int = 3
    tissue_coverage: float = 0.35  # blob area / slide area, before blobs overlap or clip
    gland_density: float = 0.6  # share of gland grid cells (inside tissue) holding a gland
    gland_radius_um: tuple[float, float] = (35.0, 80.0)
    nucleus_density: float = 0.8  # share of nucleus grid cells holding a nucleus, on average
    nucleus_radius_um: tuple[float, float] = (2.0, 4.0)

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"slide must be at least 16x16 px, got {self.width}x{self.height}")
        if self.tile_size < 16 or self.tile_size % 16:
            raise ValueError(f"tile_size must be a positive multiple of 16, got {self.tile_size}")
        if not self.mpp > 0:
            raise ValueError(f"mpp must be positive, got {self.mpp}")
        if self.tissue_blobs < 1:
            raise ValueError("tissue_blobs must be at least 1")


@dataclass(frozen=True)
class SyntheticSlideFiles:
    """Paths written by ``write_synthetic_slide``."""

    slide: Path
    mask: Path
    geojson: Path


def level_shapes(spec: SyntheticSpec) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level: halved (rounding up) until the long side <= 1024."""
    shapes = [(spec.height, spec.width)]
    while max(shapes[-1]) > _MIN_LEVEL_SIDE:
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def _colour_key(spec: SyntheticSpec) -> int:
    return (spec.seed * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF


def render_region(
    spec: SyntheticSpec, x: int, y: int, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render a level-0 window: (RGB uint8 (height, width, 3), labels uint8 (height, width)).

    The pixels equal what ``write_synthetic_slide`` stores there (RGB before JPEG). Only objects
    whose bounding boxes meet the window are rasterised, so small windows are cheap. Pixels
    outside the slide are rendered as if the slide went on (they hold background there).
    """
    scene = build_scene(spec)
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    labels = np.empty((height, width), dtype=np.uint8)
    for by in range(0, height, _RENDER_BLOCK):
        for bx in range(0, width, _RENDER_BLOCK):
            h, w = min(_RENDER_BLOCK, height - by), min(_RENDER_BLOCK, width - bx)
            lab = render_labels(scene, x + bx, y + by, w, h)
            labels[by : by + h, bx : bx + w] = lab
            rgb[by : by + h, bx : bx + w] = render_rgb(
                scene, _colour_key(spec), x + bx, y + by, lab
            )
    return rgb, labels


def _downsample(block: np.ndarray) -> np.ndarray:
    """2x2 box mean of a uint8 (h, w, c) block, odd edges replicated: ((h+1)//2, (w+1)//2, c)."""
    h, w = block.shape[:2]
    if h % 2 or w % 2:
        block = np.pad(block, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    s = block.astype(np.uint16)
    total = s[0::2, 0::2] + s[1::2, 0::2] + s[0::2, 1::2] + s[1::2, 1::2]
    return ((total + 2) >> 2).astype(np.uint8)


def _pad_tile(tile: np.ndarray, size: int) -> np.ndarray:
    h, w = tile.shape[:2]
    if h == size and w == size:
        return tile
    pad = ((0, size - h), (0, size - w)) + ((0, 0),) * (tile.ndim - 2)
    # Edge replication keeps JPEG blocks at the slide border free of ringing from black padding.
    return np.pad(tile, pad, mode="edge")


def _buffer(shape: tuple[int, ...], tmpdir: str, name: str) -> np.ndarray:
    if int(np.prod(shape)) <= _IN_MEMORY_BYTES:
        return np.zeros(shape, dtype=np.uint8)
    return np.lib.format.open_memmap(
        os.path.join(tmpdir, f"{name}.npy"), mode="w+", dtype=np.uint8, shape=shape
    )


def _store_half(below: np.ndarray | None, ty: int, tx: int, rgb: np.ndarray) -> None:
    """Box-filter a tile at (ty, tx) of one level into the next level's buffer."""
    if below is not None:
        small = _downsample(rgb)
        below[ty // 2 : ty // 2 + small.shape[0], tx // 2 : tx // 2 + small.shape[1]] = small


def _level0_tiles(
    spec: SyntheticSpec, scene: Scene, below: np.ndarray | None
) -> Iterator[np.ndarray]:
    """Level-0 RGB tiles in row-major order; each is also box-filtered into ``below``."""
    t, key = spec.tile_size, _colour_key(spec)
    for ty in range(0, spec.height, t):
        for tx in range(0, spec.width, t):
            h, w = min(t, spec.height - ty), min(t, spec.width - tx)
            rgb = render_rgb(scene, key, tx, ty, render_labels(scene, tx, ty, w, h))
            _store_half(below, ty, tx, rgb)
            yield _pad_tile(rgb, t)


def _reduced_tiles(level: np.ndarray, below: np.ndarray | None, tile: int) -> Iterator[np.ndarray]:
    """Tiles of a buffered level in row-major order; each is also box-filtered into ``below``."""
    height, width = level.shape[:2]
    for ty in range(0, height, tile):
        for tx in range(0, width, tile):
            rgb = np.asarray(level[ty : ty + tile, tx : tx + tile])
            _store_half(below, ty, tx, rgb)
            yield _pad_tile(rgb, tile)


def _mask_tiles(
    spec: SyntheticSpec, scene: Scene, shape: tuple[int, int], stride: int
) -> Iterator[np.ndarray]:
    """Label tiles of one mask level: level-0 labels sampled every ``stride`` px (nearest)."""
    t = spec.tile_size
    for ty in range(0, shape[0], t):
        for tx in range(0, shape[1], t):
            h, w = min(t, shape[0] - ty), min(t, shape[1] - tx)
            labels = render_labels(scene, tx * stride, ty * stride, w, h, stride)
            yield np.pad(labels, ((0, t - h), (0, t - w)))


def _description(spec: SyntheticSpec, kind: str) -> str:
    # OpenSlide's generic-tiff reader takes mpp from the resolution tags; the description repeats
    # it (and the classes) for readers that only look there.
    classes = ",".join(f"{i}={n}" for i, n in enumerate(CLASS_NAMES))
    return (
        f"histocrowd synthetic {kind}|seed={spec.seed}|width={spec.width}|height={spec.height}"
        f"|mpp={spec.mpp}|classes={classes}"
    )


def _page_options(spec: SyntheticSpec, level: int, kind: str) -> dict[str, object]:
    mpp = spec.mpp * 2**level
    return {
        "tile": (spec.tile_size, spec.tile_size),
        "resolution": (1e4 / mpp, 1e4 / mpp),  # pixels per centimetre
        "resolutionunit": "CENTIMETER",
        "subfiletype": 1 if level else 0,  # reduced-resolution pages are what OpenSlide levels
        "description": _description(spec, kind) if level == 0 else None,
        "metadata": None,
        "software": False,
        "maxworkers": 1,
    }


def _bigtiff(shape: tuple[int, int], samples: int) -> bool:
    return shape[0] * shape[1] * samples > 3 << 30  # classic TIFF offsets end at 4 GiB


def _write_slide(path: Path, spec: SyntheticSpec, scene: Scene) -> None:
    shapes = level_shapes(spec)
    with (
        tempfile.TemporaryDirectory(dir=path.parent, prefix=".synthetic-") as tmp,
        tifffile.TiffWriter(path, bigtiff=_bigtiff(shapes[0], 3)) as tif,
    ):

        def buffer_for(level: int) -> np.ndarray | None:
            if level >= len(shapes):
                return None
            return _buffer((*shapes[level], 3), tmp, f"level{level}")

        below = buffer_for(1)
        tiles = _level0_tiles(spec, scene, below)
        for level, shape in enumerate(shapes):
            if level:
                # Each level is written from the buffer the level above filled, and fills the next.
                current, below = below, buffer_for(level + 1)
                tiles = _reduced_tiles(current, below, spec.tile_size)
            tif.write(
                tiles,
                shape=(*shape, 3),
                dtype=np.uint8,
                photometric="rgb",  # tifffile stores JPEG RGB as YCbCr 4:2:0, as scanners do
                compression="jpeg",
                compressionargs={"level": spec.jpeg_quality},
                **_page_options(spec, level, "slide"),
            )


def _write_mask(path: Path, spec: SyntheticSpec, scene: Scene) -> None:
    shapes = level_shapes(spec)
    with tifffile.TiffWriter(path, bigtiff=_bigtiff(shapes[0], 1)) as tif:
        for level, shape in enumerate(shapes):
            tif.write(
                _mask_tiles(spec, scene, shape, 2**level),
                shape=shape,
                dtype=np.uint8,
                photometric="minisblack",
                compression="zlib",
                **_page_options(spec, level, "mask"),
            )


def _feature(ring: np.ndarray, name: str) -> str:
    coords = np.round(np.asarray(ring, dtype=np.float64), 2).tolist()
    if coords[0] != coords[-1]:
        coords.append(coords[0])
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [coords]},
        "properties": {
            "objectType": "annotation",
            "classification": {"name": name, "color": list(CLASS_COLORS[CLASS_NAMES.index(name)])},
        },
    }
    return json.dumps(feature, separators=(",", ":"))


def _outline_features(outline: shapely.Geometry) -> Iterator[str]:
    for part in shapely.get_parts(outline):
        if part.is_empty or part.geom_type != "Polygon":
            continue
        rings = [np.asarray(part.exterior.coords)] + [np.asarray(r.coords) for r in part.interiors]
        coords = [np.round(r, 2).tolist() for r in rings]
        feature = {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": coords},
            "properties": {
                "objectType": "annotation",
                "classification": {"name": "tissue", "color": list(CLASS_COLORS[1])},
            },
        }
        yield json.dumps(feature, separators=(",", ":"))


def _set_features(polys: PolygonSet, name: str) -> Iterator[str]:
    for i in range(len(polys)):
        yield _feature(polys.ring(i), name)


def _write_geojson(path: Path, spec: SyntheticSpec, scene: Scene) -> None:
    """QuPath-style FeatureCollection, streamed feature by feature (nuclei may number 100k+)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        first = True
        for chunk in (
            _outline_features(scene.tissue_outline),
            _set_features(scene.glands, "gland"),
            _set_features(scene.nuclei, "nucleus"),
        ):
            for text in chunk:
                f.write(text if first else ",\n" + text)
                first = False
        f.write("\n]}\n")


def write_synthetic_slide(directory: Path, name: str, spec: SyntheticSpec) -> SyntheticSlideFiles:
    """Write ``<name>.tiff``, ``<name>.mask.tiff`` and ``<name>.geojson`` into ``directory``.

    Each file is written under a temporary name and renamed into place, so a reader never sees a
    half-written slide.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    scene = build_scene(spec)
    files = SyntheticSlideFiles(
        slide=directory / f"{name}.tiff",
        mask=directory / f"{name}.mask.tiff",
        geojson=directory / f"{name}.geojson",
    )
    for target, writer in (
        (files.slide, _write_slide),
        (files.mask, _write_mask),
        (files.geojson, _write_geojson),
    ):
        partial = target.with_name(f".{target.name}.partial")
        try:
            writer(partial, spec, scene)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    logger.info(
        "wrote synthetic slide %s (%dx%d, seed %d)", files.slide, spec.width, spec.height, spec.seed
    )
    return files
