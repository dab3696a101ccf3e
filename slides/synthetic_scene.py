"""Object layout of a synthetic slide: tissue blobs, glands and nuclei as polygons (pure).

Every object is generated once from the spec's seed as a polygon in level-0 pixel coordinates
(x right, y down; vertices rounded to 0.01 px). The same vertex arrays are rasterised tile by
tile (``synthetic_render``) and written to GeoJSON, so mask and GeoJSON agree by construction.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from slides.synthetic import SyntheticSpec

logger = logging.getLogger(__name__)

_NUCLEUS_VERTICES = 16
_GLAND_VERTICES = 48


@dataclass(frozen=True, eq=False)
class PolygonSet:
    """Simple polygons stored flat, with a bounding-box index for window queries.

    ``vertices`` is (V, 2) float64, level-0 px; polygon ``i`` is the open ring
    ``vertices[starts[i]:starts[i + 1]]`` (the closing edge is implied). ``edges`` is (V, 4)
    ``[ax, ay, bx, by]``: edge ``j`` runs from vertex ``j`` to the next vertex of its ring.
    """

    vertices: np.ndarray
    starts: np.ndarray
    edges: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def from_rings(cls, rings: list[np.ndarray] | np.ndarray) -> PolygonSet:
        """Build from a list of (k_i, 2) rings or an (n, k, 2) array; vertices are rounded."""
        rings = [np.round(np.asarray(r, dtype=np.float64), 2) for r in rings]
        counts = np.array([len(r) for r in rings], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if rings:
            vertices = np.concatenate(rings)
            nxt = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
            bounds = np.stack([np.r_[r.min(axis=0), r.max(axis=0)] for r in rings])
        else:
            vertices = np.zeros((0, 2))
            nxt = np.zeros((0, 2))
            bounds = np.zeros((0, 4))
        edges = np.concatenate([vertices, nxt], axis=1)
        tree = shapely.STRtree(shapely.box(*bounds.T) if len(bounds) else [])
        return cls(vertices=vertices, starts=starts, edges=edges, tree=tree)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def ring(self, i: int) -> np.ndarray:
        """(k, 2) vertices of polygon ``i`` (open ring)."""
        return self.vertices[self.starts[i] : self.starts[i + 1]]

    def polygons(self) -> np.ndarray:
        """All polygons as a shapely geometry array (n,)."""
        return np.array([shapely.Polygon(self.ring(i)) for i in range(len(self))], dtype=object)

    def edges_in(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """(E, 4) edges of every polygon whose bounding box meets the box [x0, x1] x [y0, y1]."""
        if len(self) == 0:
            return self.edges[:0]
        ids = np.sort(self.tree.query(shapely.box(x0, y0, x1, y1)))
        if len(ids) == 0:
            return self.edges[:0]
        counts = self.starts[ids + 1] - self.starts[ids]
        offsets = np.cumsum(counts) - counts
        index = np.repeat(self.starts[ids] - offsets, counts) + np.arange(counts.sum())
        return self.edges[index]


@dataclass(frozen=True)
class Stain:
    """Per-slide H&E appearance: unit optical-density vectors (RGB, base-10) and strengths."""

    hematoxylin: tuple[float, float, float]
    eosin: tuple[float, float, float]
    background_od: tuple[float, float, float]
    stroma_eosin: float
    stroma_hematoxylin: float
    epithelium_hematoxylin: float
    epithelium_eosin: float
    lumen_eosin: float
    nucleus_hematoxylin: float
    fibre_angle: float
    fibre_wavelength_px: float


@dataclass(frozen=True, eq=False)
class Scene:
    """All objects of one synthetic slide (level-0 px)."""

    tissue: PolygonSet  # smooth blobs; they may overlap, their union is the tissue
    glands: PolygonSet  # outer outlines: the whole gland area is class "gland"
    lumens: PolygonSet  # pale centres, for colour only (class stays "gland")
    nuclei: PolygonSet
    tissue_outline: BaseGeometry  # union of the blobs clipped to the slide (Polygon/MultiPolygon)
    stain: Stain


def _unit(v: np.ndarray) -> tuple[float, float, float]:
    v = v / np.linalg.norm(v)
    return (float(v[0]), float(v[1]), float(v[2]))


def _sample_stain(rng: np.random.Generator) -> Stain:
    # Stain vectors jittered around published H&E optical densities (Ruifrok & Johnston for
    # haematoxylin, a Macenko-style eosin that also absorbs some blue so stroma reads pink).
    strength = rng.uniform(0.8, 1.2)
    h_gain = strength * rng.uniform(0.85, 1.15)
    e_gain = strength * rng.uniform(0.85, 1.15)
    glass = rng.uniform(0.01, 0.03)
    return Stain(
        hematoxylin=_unit(rng.uniform([0.56, 0.66, 0.24], [0.70, 0.78, 0.34])),
        eosin=_unit(rng.uniform([0.10, 0.80, 0.40], [0.24, 0.90, 0.55])),
        background_od=(glass, glass * rng.uniform(0.9, 1.3), glass * rng.uniform(0.8, 1.1)),
        stroma_eosin=0.34 * e_gain,
        stroma_hematoxylin=0.06 * h_gain,
        epithelium_hematoxylin=0.55 * h_gain,
        epithelium_eosin=0.30 * e_gain,
        lumen_eosin=0.07 * e_gain,
        nucleus_hematoxylin=1.05 * h_gain,
        fibre_angle=float(rng.uniform(0.0, np.pi)),
        fibre_wavelength_px=float(rng.uniform(9.0, 15.0)),
    )


def _radial_shapes(
    rng: np.random.Generator,
    centres: np.ndarray,
    radii: np.ndarray,
    n_vertices: int,
    harmonics: int,
    amplitude: float,
    aspect: tuple[float, float],
) -> np.ndarray:
    """(n, k, 2) smooth star-shaped rings: r(t) = R (1 + sum_k a_k cos(k t + p_k)), squashed.

    The amplitudes sum to at most ``amplitude`` (< 1), so r stays positive and each ring simple;
    the minor axis is ``aspect`` (a range within (0, 1]) times the major one, then rotated, so no
    vertex lies farther than R (1 + amplitude) from its centre.
    """
    n = len(centres)
    t = np.linspace(0.0, 2.0 * np.pi, n_vertices, endpoint=False)
    k = np.arange(2, 2 + harmonics)
    a = rng.dirichlet(np.ones(harmonics), size=n) * rng.uniform(0.3, 1.0, (n, 1)) * amplitude
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, harmonics))
    r = radii[:, None] * (
        1.0 + np.einsum("nh,nht->nt", a, np.cos(k[None, :, None] * t + phase[..., None]))
    )
    squash = rng.uniform(*aspect, n)[:, None]
    rot = rng.uniform(0.0, np.pi, n)[:, None]
    u = r * np.cos(t)
    v = r * np.sin(t) * squash
    x = centres[:, :1] + u * np.cos(rot) - v * np.sin(rot)
    y = centres[:, 1:] + u * np.sin(rot) + v * np.cos(rot)
    return np.stack([x, y], axis=-1)


def _tissue_rings(spec: SyntheticSpec, rng: np.random.Generator) -> list[np.ndarray]:
    w, h, n = spec.width, spec.height, spec.tissue_blobs
    base = np.sqrt(spec.tissue_coverage * w * h / (n * np.pi))
    radii = base * rng.uniform(0.8, 1.2, n)
    extent = radii * 1.3  # harmonics add at most 30 %
    centres = np.zeros((n, 2))
    for i in range(n):
        # Best of a few candidates, farthest from the blobs already placed, so pieces spread out.
        lo = np.minimum(extent[i], [w / 2, h / 2])
        cand = rng.uniform(lo, [w - lo[0], h - lo[1]], (16, 2))
        if i:
            gaps = np.linalg.norm(cand[:, None] - centres[None, :i], axis=-1) - radii[None, :i]
            cand = cand[np.argmax(gaps.min(axis=1))][None]
        centres[i] = cand[0]
    rings = []
    for i in range(n):
        k = int(np.clip(2.0 * np.pi * extent[i] / 12.0, 64, 4096))  # ~12 px edges
        rings.append(
            _radial_shapes(rng, centres[i : i + 1], radii[i : i + 1], k, 5, 0.3, (0.6, 1.0))[0]
        )
    return rings


def _grid_cells(spec: SyntheticSpec, cell: float) -> np.ndarray:
    """(n, 2) top-left corners of square cells tiling the slide, odd rows shifted half a cell.

    The shift breaks up the square lattice the eye would otherwise pick out.
    """
    ny = int(spec.height // cell)
    nx = int((spec.width - cell / 2) // cell)
    gx, gy = np.meshgrid(np.arange(nx), np.arange(ny))
    x = gx.ravel() * cell + (gy.ravel() % 2) * (cell / 2)
    return np.stack([x, gy.ravel() * cell], axis=1).astype(np.float64)


def _place_in_cells(
    rng: np.random.Generator, corners: np.ndarray, cell: float, margins: np.ndarray
) -> np.ndarray:
    """(n, 2) a random centre in each cell, at least ``margins[i]`` px from the cell's sides.

    An object reaching no farther than its margin from its centre stays inside its own cell,
    so objects placed this way never overlap.
    """
    room = np.maximum(cell - 2.0 * margins, 0.0)[:, None]
    return corners + margins[:, None] + rng.random(corners.shape) * room


def _smooth_field(rng: np.random.Generator, xy: np.ndarray, scale: float) -> np.ndarray:
    """Values in [0, 1] varying over ``scale`` px: a few random plane waves (cheap, vectorised)."""
    k = rng.normal(size=(4, 2)) / scale
    phase = rng.uniform(0.0, 2.0 * np.pi, 4)
    return 0.5 + 0.5 * np.mean(np.sin(xy @ k.T * 2.0 * np.pi + phase), axis=1) * 1.6


@functools.lru_cache(maxsize=4)
def build_scene(spec: SyntheticSpec) -> Scene:
    """Generate every object of ``spec`` once (deterministic in the spec)."""
    rng = np.random.default_rng([spec.seed, spec.width, spec.height, 0x5EED])
    stain = _sample_stain(rng)
    px = 1.0 / spec.mpp

    blob_rings = _tissue_rings(spec, rng)
    tissue = PolygonSet.from_rings(blob_rings)
    slide_box = shapely.box(0, 0, spec.width, spec.height)
    union = shapely.unary_union(tissue.polygons())
    outline = shapely.intersection(union, slide_box)
    shapely.prepare(union)

    # Glands: outer outline plus a lumen that follows it at 45-65 % of its radius.
    g_lo, g_hi = (r * px for r in spec.gland_radius_um)
    cell = 2.2 * g_hi * 1.15 + 8.0
    corners = _grid_cells(spec, cell)
    corners = corners[rng.random(len(corners)) < spec.gland_density]
    radii = rng.uniform(g_lo, g_hi, len(corners))
    centres = _place_in_cells(rng, corners, cell, radii * 1.15 + 4.0)  # harmonics <= 15 %
    outer = _radial_shapes(rng, centres, radii, _GLAND_VERTICES, 4, 0.15, (0.6, 1.0))
    # The lumen is the outline shrunk about its centre: the epithelium keeps an even thickness.
    factor = rng.uniform(0.45, 0.65, (len(centres), 1, 1))
    lumen = centres[:, None, :] + (outer - centres[:, None, :]) * factor
    if len(centres):
        inside = shapely.contains(union, shapely.polygons(outer))
        outer, lumen = outer[inside], lumen[inside]
    glands = PolygonSet.from_rings(outer)
    lumens = PolygonSet.from_rings(lumen)

    # Nuclei: ellipses on a jittered grid, kept in tissue, out of glands, never touching.
    n_lo, n_hi = (r * px for r in spec.nucleus_radius_um)
    n_ext = n_hi * 1.06  # harmonics <= 6 %
    cell = 2.0 * n_ext + 8.0
    corners = _grid_cells(spec, cell)
    density = spec.nucleus_density * np.clip(_smooth_field(rng, corners, 60.0 * px), 0.2, 1.6)
    corners = corners[rng.random(len(corners)) < np.minimum(density, 1.0)]
    radii = rng.uniform(n_lo, n_hi, len(corners))
    centres = _place_in_cells(rng, corners, cell, radii * 1.06 + 2.0)
    keep = shapely.contains_xy(shapely.buffer(union, -(n_ext + 2.0)), centres[:, 0], centres[:, 1])
    if len(glands):
        gland_zone = shapely.buffer(shapely.unary_union(glands.polygons()), n_ext + 3.0)
        keep &= ~shapely.contains_xy(gland_zone, centres[:, 0], centres[:, 1])
    centres, radii = centres[keep], radii[keep]
    shapes = _radial_shapes(rng, centres, radii, _NUCLEUS_VERTICES, 2, 0.06, (0.55, 1.0))
    nuclei = PolygonSet.from_rings(shapes)

    logger.info(
        "synthetic scene seed=%d %dx%d: %d tissue blobs, %d glands, %d nuclei",
        spec.seed,
        spec.width,
        spec.height,
        len(tissue),
        len(glands),
        len(nuclei),
    )
    return Scene(
        tissue=tissue,
        glands=glands,
        lumens=lumens,
        nuclei=nuclei,
        tissue_outline=outline,
        stain=stain,
    )
