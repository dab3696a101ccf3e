"""Rasterise a synthetic scene into any level-0 window: labels and H&E-like colour (pure).

Every value here is a function of global level-0 pixel coordinates only (polygons crossed at
pixel centres, noise hashed from lattice coordinates), so a window renders the same pixels
whichever tile or region it is part of. That is what lets a 20k x 20k slide be written tile by
tile and lets ``render_region`` reproduce any part of it.
"""

from __future__ import annotations

import numpy as np

from slides.synthetic_scene import PolygonSet, Scene

_LN10 = np.float32(np.log(10.0))


def rasterize(
    edges: np.ndarray, x0: int, y0: int, width: int, height: int, stride: int = 1
) -> np.ndarray:
    """Inside test (non-zero winding) of polygon edges at pixel centres of a window.

    ``edges`` is (E, 4) ``[ax, ay, bx, by]`` in level-0 px. Sample (i, j) of the window is the
    level-0 pixel centre ``((x0 / stride + j) * stride + 0.5, (y0 / stride + i) * stride + 0.5)``;
    ``x0`` and ``y0`` must be multiples of ``stride``. Returns bool (height, width).

    A scanline fill: each edge adds +-1 at the first sample to the right of where it crosses a
    sample row, and a cumulative sum along the row gives the winding number. Crossings are
    computed in global coordinates and mapped to window columns with integer arithmetic, so
    the result for a pixel does not depend on the window around it. Overlapping polygons of
    one set (all wound the same way) come out as their union.
    """
    out = np.zeros((height, width), dtype=bool)
    if len(edges) == 0 or width <= 0 or height <= 0:
        return out
    row0, col0 = y0 // stride, x0 // stride
    ax, ay, bx, by = edges.T
    # Global sample row r (centre r * stride + 0.5) is crossed when min(ay, by) <= y < max(...)
    r_lo = np.ceil((np.minimum(ay, by) - 0.5) / stride).astype(np.int64)
    r_hi = np.ceil((np.maximum(ay, by) - 0.5) / stride).astype(np.int64)
    r_lo = np.maximum(r_lo, row0)
    r_hi = np.minimum(r_hi, row0 + height)
    counts = np.maximum(r_hi - r_lo, 0)
    keep = counts > 0
    if not keep.any():
        return out
    counts, r_lo = counts[keep], r_lo[keep]
    ax, ay, bx, by = ax[keep], ay[keep], bx[keep], by[keep]
    edge = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    rows = np.repeat(r_lo - offsets, counts) + np.arange(counts.sum())
    yc = rows * float(stride) + 0.5
    xc = ax[edge] + (yc - ay[edge]) * ((bx - ax) / (by - ay))[edge]
    cols = np.ceil((xc - 0.5) / stride).astype(np.int64) - col0
    # Crossings left of the window still count (column 0); those right of it fall off (width).
    cols = np.clip(cols, 0, width)
    winding_step = np.where(by > ay, 1.0, -1.0)[edge]
    acc = np.bincount(
        (rows - row0) * (width + 1) + cols, weights=winding_step, minlength=height * (width + 1)
    ).reshape(height, width + 1)
    return np.cumsum(acc[:, :width], axis=1) != 0


def _mask(polys: PolygonSet, x0: int, y0: int, width: int, height: int, stride: int) -> np.ndarray:
    x1, y1 = x0 + width * stride, y0 + height * stride
    return rasterize(polys.edges_in(x0, y0, x1, y1), x0, y0, width, height, stride)


def render_labels(
    scene: Scene, x0: int, y0: int, width: int, height: int, stride: int = 1
) -> np.ndarray:
    """Class ids uint8 (height, width) at pixel centres of a (possibly strided) window.

    0 background, 1 tissue, 2 gland, 3 nucleus; later classes win where objects nest.
    ``stride`` 2**k samples level-0 pixel (i * 2**k, j * 2**k): the mask pyramid's level k.
    """
    labels = _mask(scene.tissue, x0, y0, width, height, stride).astype(np.uint8)
    labels[_mask(scene.glands, x0, y0, width, height, stride)] = 2
    labels[_mask(scene.nuclei, x0, y0, width, height, stride)] = 3
    return labels


def _hash01(ix: np.ndarray, iy: np.ndarray, key: int) -> np.ndarray:
    """Uniform float32 in [0, 1) from integer lattice coordinates (broadcast) and a key."""
    h = (ix.astype(np.uint32) * np.uint32(0x9E3779B1)) ^ (
        iy.astype(np.uint32) * np.uint32(0x85EBCA77)
    )
    h ^= np.uint32(key & 0xFFFFFFFF)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _axis(start: int, n: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Lattice cell index and smoothstep weight of pixel centres start..start+n-1 along one axis."""
    g = (np.arange(start, start + n, dtype=np.float64) + 0.5) / spacing
    i = np.floor(g).astype(np.int64)
    f = (g - i).astype(np.float32)
    return i, f * f * (np.float32(3.0) - np.float32(2.0) * f)


def value_noise(x0: int, y0: int, width: int, height: int, spacing: float, key: int) -> np.ndarray:
    """Smooth noise in [0, 1], float32 (height, width), features about ``spacing`` px wide."""
    ix, fx = _axis(x0, width, spacing)
    iy, fy = _axis(y0, height, spacing)
    lx = np.arange(ix[0], ix[-1] + 2)
    ly = np.arange(iy[0], iy[-1] + 2)
    lattice = _hash01(lx[None, :], ly[:, None], key)
    top, bottom = lattice[iy - ly[0]], lattice[iy - ly[0] + 1]
    rows = top + (bottom - top) * fy[:, None]
    left, right = rows[:, ix - lx[0]], rows[:, ix - lx[0] + 1]
    return left + (right - left) * fx[None, :]


def white_noise(x0: int, y0: int, width: int, height: int, key: int) -> np.ndarray:
    """Independent uniform [0, 1) per pixel, float32 (height, width)."""
    xs = np.arange(x0, x0 + width, dtype=np.int64)
    ys = np.arange(y0, y0 + height, dtype=np.int64)
    return _hash01(xs[None, :], ys[:, None], key)


def render_rgb(scene: Scene, key: int, x0: int, y0: int, labels: np.ndarray) -> np.ndarray:
    """H&E-like RGB uint8 (h, w, 3) for a level-0 window whose labels are ``labels`` (h, w).

    Beer-Lambert: each pixel holds haematoxylin and eosin amounts (optical density units); the
    transmitted light per channel is 255 * 10 ** -(cH * H + cE * E + glass).
    """
    h, w = labels.shape
    st = scene.stain
    low = value_noise(x0, y0, w, h, 96.0, key + 1)
    mid = value_noise(x0, y0, w, h, 7.0, key + 2)
    grain = white_noise(x0, y0, w, h, key + 3)
    warp = value_noise(x0, y0, w, h, 220.0, key + 4)
    ripple = value_noise(x0, y0, w, h, 36.0, key + 6)

    # Collagen fibres: bands of a sine whose phase is warped by smooth noise; the large warp
    # bends the bands' direction over a few hundred px, the small one makes them wavy.
    xs = np.arange(x0, x0 + w, dtype=np.float32)
    ys = np.arange(y0, y0 + h, dtype=np.float32)
    c, s = np.float32(np.cos(st.fibre_angle)), np.float32(np.sin(st.fibre_angle))
    phase = (xs[None, :] * c + ys[:, None] * s) * np.float32(2.0 * np.pi / st.fibre_wavelength_px)
    fibre = np.float32(0.5) + np.float32(0.5) * np.sin(
        phase + np.float32(40.0) * warp + np.float32(5.0) * ripple
    )
    fibre *= fibre

    c_e = (
        np.float32(st.stroma_eosin) * (0.45 + 0.8 * fibre * low + 0.4 * low) * (0.8 + 0.4 * ripple)
    )
    c_h = np.float32(st.stroma_hematoxylin) * (0.6 + 0.8 * mid)
    c_e[labels == 0] = 0.0
    c_h[labels == 0] = 0.0

    gland = labels == 2
    if gland.any():
        lumen = _mask(scene.lumens, x0, y0, w, h, 1) & gland
        epi = gland & ~lumen
        c_h[epi] = (st.epithelium_hematoxylin * (0.55 + 0.9 * mid[epi])).astype(np.float32)
        c_e[epi] = (st.epithelium_eosin * (0.8 + 0.4 * low[epi])).astype(np.float32)
        c_h[lumen] = np.float32(0.015)
        c_e[lumen] = (st.lumen_eosin * (0.5 + 1.0 * low[lumen])).astype(np.float32)
    nucleus = labels == 3
    if nucleus.any():
        chromatin = value_noise(x0, y0, w, h, 3.0, key + 5)[nucleus]
        c_h[nucleus] = (st.nucleus_hematoxylin * (0.8 + 0.4 * chromatin)).astype(np.float32)
        c_e[nucleus] = np.float32(0.12)

    jitter = np.float32(0.9) + np.float32(0.2) * grain  # per-pixel grain, as on a scanner
    glass_noise = np.float32(0.012) * (grain - np.float32(0.5))
    rgb = np.empty((h, w, 3), dtype=np.uint8)
    for ch in range(3):
        od = (c_h * st.hematoxylin[ch] + c_e * st.eosin[ch]) * jitter
        od += np.float32(st.background_od[ch]) + glass_noise
        value = np.float32(255.0) * np.exp(-_LN10 * od)
        rgb[..., ch] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
    return rgb
