"""A model version's Dice on held-out ground truth (evaluation, not a user action; pure torch).

The held-out tiles come from a synthetic slide that is in no project (same generator, another
seed), rendered at level 0 and box-averaged to the model's ``target_mpp``, as the trainer's
reader sees a slide; the labels are the truth rasterised on the same grid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from learning.simulation.metrics import class_mean_dice, confusion_counts
from learning.simulation.truth import GroundTruth

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOut:
    """Tiles at the working resolution: images (N, H, W, 3) uint8, labels (N, H, W) int16."""

    images: np.ndarray
    labels: np.ndarray


def held_out_tiles(
    spec: object, truth: GroundTruth, downsample: int, tile: int, count: int, seed: int
) -> HeldOut:
    """``count`` tiles of ``tile`` working px on tissue of the synthetic slide ``spec``."""
    from slides.synthetic import render_region

    rng = np.random.default_rng(seed)
    side = tile * downsample
    images, labels = [], []
    tries = 0
    while len(images) < count and tries < count * 20:
        tries += 1
        x = int(rng.integers(0, max(1, spec.width - side)))
        y = int(rng.integers(0, max(1, spec.height - side)))
        lab = truth.mask((float(x), float(y)), (tile, tile), float(downsample))
        if (lab > 0).mean() < 0.3:
            continue
        rgb, _ = render_region(spec, x, y, side, side)
        small = rgb.reshape(tile, downsample, tile, downsample, 3).mean(axis=(1, 3))
        images.append(small.round().astype(np.uint8))
        labels.append(lab)
    if not images:
        raise ValueError("no held-out tile on tissue")
    return HeldOut(np.stack(images), np.stack(labels))


def model_dice(weights: Path, held_out: HeldOut, class_map: list[int]) -> float:
    """Mean foreground class Dice of the model's argmax (no dropout) over the held-out tiles.

    ``class_map[k]`` is the truth index of the model's output class k (the model's class list
    against the simulator's class order).
    """
    import torch

    from learning.networks import load_weights

    model, _ = load_weights(weights, map_location="cpu")
    n = max(max(class_map) + 1, int(held_out.labels.max()) + 1)
    counts = np.zeros((n, n), dtype=np.int64)
    mapping = np.asarray(class_map, dtype=np.int16)
    with torch.no_grad():
        for start in range(0, len(held_out.images), 8):
            batch = torch.from_numpy(held_out.images[start : start + 8]).permute(0, 3, 1, 2)
            logits = model(batch.float() / 255.0)
            pred = logits.argmax(dim=1).numpy()
            pred = mapping[np.clip(pred, 0, len(mapping) - 1)]
            for t, p in zip(held_out.labels[start : start + 8], pred, strict=True):
                counts += confusion_counts(t, p, n)
    return class_mean_dice(counts)
