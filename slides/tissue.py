"""Tissue detection on a slide thumbnail, for brightfield and fluorescence slides (pure).

Brightfield (H&E, IHC) shows tissue as darker, coloured pixels on bright glass; fluorescence
(DAPI, TRITC, ...) shows it as light on a black background. The mode is read off the image's
border, then a smoothed per-pixel signal is split by Otsu's threshold and tidied up with
morphology. Works on thumbnails of a few hundred to a few thousand pixels a side.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from skimage import filters, morphology

logger = logging.getLogger(__name__)

Mode = Literal["brightfield", "fluorescence"]

# Border brightness (max over RGB, 0-255) below which the glass is dark: fluorescence. Glass in
# brightfield scans sits at 200-250 and even stained tissue rarely has all three channels below
# 100, while fluorescence backgrounds sit at 0-30, so the split is wide.
_DARK_BORDER = 100.0
_BORDER_FRACTION = 0.05
# Brightfield Otsu threshold bounds, in summed optical density (base 10, 3 channels) above the
# glass: under 0.08 is scanner noise; faint eosin reaches 0.3, and Otsu between glass and dense
# tissue often lands above that (0.4-0.55 on the test slides), so it is capped there.
_BRIGHTFIELD_OD_ABOVE_GLASS = (0.08, 0.3)
_MAX_GLASS_OD = 0.15  # a border darker than this is tissue, not glass; assume clean glass then


@dataclass(frozen=True)
class TissueDetection:
    """A tissue mask with how it was found: mode, signal and threshold (in the signal's units)."""

    mask: np.ndarray  # bool (h, w)
    mode: Mode
    signal: str  # "optical_density" (sum over RGB, base 10) or "log_brightness" (ln(1 + max RGB))
    threshold: float


def _border(values: np.ndarray) -> np.ndarray:
    h, w = values.shape[:2]
    b = max(1, int(round(min(h, w) * _BORDER_FRACTION)))
    return np.concatenate(
        [
            values[:b].reshape(-1),
            values[-b:].reshape(-1),
            values[:, :b].reshape(-1),
            values[:, -b:].reshape(-1),
        ]
    )


def imaging_mode(rgb: np.ndarray) -> Mode:
    """Brightfield or fluorescence, from the median border brightness of an RGB uint8 image.

    Slides are scanned with a margin of empty glass, so the border is mostly background:
    bright for brightfield, dark for fluorescence.
    """
    brightness = np.asarray(rgb)[..., :3].max(axis=-1)
    return "fluorescence" if float(np.median(_border(brightness))) < _DARK_BORDER else "brightfield"


def _scale(shape: tuple[int, ...]) -> float:
    """Thumbnail pixels per 'unit' of smoothing: 1 for a 512 px long side."""
    return max(shape[0], shape[1]) / 512.0


def detect_tissue(
    rgb: np.ndarray,
    *,
    min_object_px: int | None = None,
    min_hole_px: int | None = None,
    mode: Mode | None = None,
) -> TissueDetection:
    """Detect tissue in an RGB(A) uint8 thumbnail (h, w, 3|4); returns a bool (h, w) mask.

    ``min_object_px`` / ``min_hole_px``: tissue pieces / holes of at most this many thumbnail
    pixels are dropped / filled; by default 0.02 % / 0.05 % of the image area. ``mode``
    overrides the automatic brightfield/fluorescence choice.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] < 3:
        raise ValueError(f"expected an (h, w, 3) RGB image, got shape {rgb.shape}")
    rgb = rgb[..., :3].astype(np.float32)
    mode = mode or imaging_mode(rgb)
    scale = _scale(rgb.shape)
    area = rgb.shape[0] * rgb.shape[1]

    if mode == "brightfield":
        # Optical density (Beer-Lambert) is additive in stain amount, so faint eosin on glass
        # separates from the glass better than in raw brightness.
        signal = -np.log10((rgb + 1.0) / 256.0).sum(axis=-1)
        signal = filters.gaussian(signal, sigma=1.0 * scale)
        glass = min(float(np.median(_border(signal))), _MAX_GLASS_OD)
        lo, hi = (glass + d for d in _BRIGHTFIELD_OD_ABOVE_GLASS)
        threshold = float(np.clip(filters.threshold_otsu(signal), lo, hi))
        name = "optical_density"
    else:
        # Fluorescence tissue is mostly dim autofluorescence between bright nuclei: smooth
        # first (so a nucleus-dotted area reads as one region) and take logs. The histogram then
        # has three parts, black glass, dim tissue and nucleus-dense tissue, and two-class Otsu
        # would split the tissue (DAPI); the lower of three-class Otsu's thresholds separates
        # glass from all tissue. It is kept above the border's (glass's) level.
        brightness = filters.gaussian(rgb.max(axis=-1), sigma=2.5 * scale, preserve_range=True)
        signal = np.log1p(brightness)
        floor = float(np.log1p(np.median(_border(brightness)) + 2.0))
        threshold = max(float(filters.threshold_multiotsu(signal, classes=3)[0]), floor)
        name = "log_brightness"

    mask = signal > threshold
    radius = max(1, int(round(1.5 * scale)))
    mask = morphology.closing(mask, morphology.disk(radius))
    holes = min_hole_px if min_hole_px is not None else max(4, int(area * 5e-4))
    objects = min_object_px if min_object_px is not None else max(4, int(area * 2e-4))
    mask = morphology.remove_small_holes(mask, max_size=holes)
    mask = morphology.remove_small_objects(mask, max_size=objects)
    logger.debug("tissue: %s, %s > %.3f, %.1f %% tissue", mode, name, threshold, 100 * mask.mean())
    return TissueDetection(mask=mask, mode=mode, signal=name, threshold=threshold)


def tissue_mask(
    rgb: np.ndarray,
    *,
    min_object_px: int | None = None,
    min_hole_px: int | None = None,
    mode: Mode | None = None,
) -> np.ndarray:
    """Bool (h, w) tissue mask of an RGB uint8 thumbnail; see ``detect_tissue``."""
    return detect_tissue(rgb, min_object_px=min_object_px, min_hole_px=min_hole_px, mode=mode).mask
