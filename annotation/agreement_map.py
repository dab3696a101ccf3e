"""A consensus run's per-pixel agreement as an RGBA heat map (pure numpy + Pillow)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Colour stops from low to full agreement: red, amber, green.
_STOPS = np.array([[215, 48, 39], [254, 224, 139], [26, 152, 80]], dtype=np.float64)


def agreement(vote_share: np.ndarray) -> np.ndarray:
    """``(H, W)`` share of raters who chose the majority class at each pixel, from the run's
    ``(C, H, W)`` vote shares; NaN where nobody rated the pixel."""
    total = vote_share.sum(axis=0)
    top = vote_share.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, top / np.where(total > 0, total, 1.0), np.nan)


def agreement_png(vote_share: np.ndarray) -> bytes:
    """An ``(H, W)`` RGBA PNG: red where raters split, green where they agree on a class.

    Pixels everyone left as background, or nobody rated, are transparent, so the tissue shows
    through where there is nothing to judge.
    """
    share = agreement(vote_share)
    rated = ~np.isnan(share)
    # Map [1/C, 1] (C = classes in play, at least 2) onto the colour stops.
    n = max(2, vote_share.shape[0])
    t = np.clip((np.nan_to_num(share, nan=1.0) - 1.0 / n) / (1.0 - 1.0 / n), 0.0, 1.0)
    position = t * (len(_STOPS) - 1)
    low = np.minimum(position.astype(int), len(_STOPS) - 2)
    frac = (position - low)[..., None]
    rgb = _STOPS[low] * (1 - frac) + _STOPS[low + 1] * frac
    all_background = vote_share[0] >= vote_share.sum(axis=0) - 1e-9
    alpha = np.where(rated & ~all_background, 255, 0)
    rgba = np.dstack([rgb, alpha]).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
