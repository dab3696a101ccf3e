"""Pixel uncertainty (predictive entropy, BALD) and per-candidate scores.

Pure module: torch only (the GPU benchmark imports it).

For T stochastic predictions p_t (B, K, H, W) of one patch batch, per pixel (natural log, nats):

* predictive entropy  H[p_mean] = -sum_k p_mean_k log p_mean_k, with p_mean = mean_t p_t;
* expected entropy    E_t H[p_t];
* BALD (mutual information between the label and the weights) = H[p_mean] - E_t H[p_t].

The samples come from MC dropout (the model's trunk runs once per patch and only its thin
stochastic head is sampled, see ``learning.networks``) or from an ensemble of models. Samples are
folded into running sums, so memory is O(B K H W) whatever T is.

A candidate (one patch) is scored by aggregating pixels: the mean of the top ``top_fraction``
(default a decile) of its pixel scores, which ranks a patch with a small confusing structure
above a patch that is mildly unsure everywhere.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from learning.data import to_device_batch
from learning.networks import UNet


def entropy(probs: Tensor, dim: int = 1) -> Tensor:
    """Shannon entropy in nats along ``dim`` (0 log 0 = 0); probs float, sums to 1 along dim."""
    return -torch.special.xlogy(probs, probs).sum(dim)


class UncertaintyAccumulator:
    """Running sums over samples: feed (B, K, H, W) probabilities T times, read pixel maps."""

    def __init__(self) -> None:
        self.count = 0
        self.prob_sum: Tensor | None = None
        self.entropy_sum: Tensor | None = None

    def add(self, probs: Tensor) -> None:
        """One sample's probabilities (B, K, H, W) float32."""
        probs = probs.float()
        ent = entropy(probs)
        if self.prob_sum is None:
            self.prob_sum, self.entropy_sum = probs.clone(), ent
        else:
            self.prob_sum += probs
            self.entropy_sum += ent
        self.count += 1

    def add_logits(self, logits: Tensor) -> None:
        """One sample's logits (B, K, H, W), any float dtype (softmax taken in float32)."""
        self.add(torch.softmax(logits.float(), dim=1))

    def mean_probs(self) -> Tensor:
        """(B, K, H, W) mean predictive probabilities."""
        if self.prob_sum is None:
            raise ValueError("no samples added")
        return self.prob_sum / self.count

    def maps(self) -> tuple[Tensor, Tensor, Tensor]:
        """(predictive entropy, expected entropy, BALD), each (B, H, W) float32 in nats."""
        pred = entropy(self.mean_probs())
        expected = self.entropy_sum / self.count
        # Clamp: mutual information is >= 0 (Jensen); float rounding can dip below by ~1e-7.
        return pred, expected, (pred - expected).clamp_min(0.0)


def pixel_uncertainty(probs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Reference form: probs (T, B, K, H, W) -> (predictive entropy, expected entropy, BALD)."""
    acc = UncertaintyAccumulator()
    for p in probs:
        acc.add(p)
    return acc.maps()


def top_fraction_mean(values: Tensor, fraction: float = 0.1) -> Tensor:
    """(B, H, W) pixel scores -> (B,) mean of each patch's top ``fraction`` of pixels."""
    flat = values.flatten(1)
    k = max(1, math.ceil(fraction * flat.shape[1]))
    return flat.topk(k, dim=1, sorted=False).values.mean(dim=1)


@dataclass
class PatchScores:
    """Scores of B candidate patches (all tensors on the scoring device, float32 unless noted).

    ``entropy``/``bald``: (B,) aggregated pixel scores in nats. ``class_pixels``: (B, K) int64,
    pixels per predicted class (argmax of the mean probabilities) at the scoring resolution.
    ``embedding``: (B, E) trunk features for diversity (mean over samples/members).
    """

    entropy: Tensor
    bald: Tensor
    class_pixels: Tensor
    embedding: Tensor
    entropy_map: Tensor | None = None
    prediction_map: Tensor | None = None

    def numpy(self) -> dict[str, np.ndarray]:
        """The scores as numpy arrays keyed by field name (maps only when computed)."""
        return {
            k: getattr(self, k).cpu().numpy()
            for k in self.__dataclass_fields__
            if getattr(self, k) is not None
        }


def _finish(
    acc: UncertaintyAccumulator, embedding: Tensor, fraction: float, map_size: int | None = None
) -> PatchScores:
    """Aggregate the accumulated samples. ``map_size``: also return coarse (B, S, S) maps,
    ``entropy_map`` (mean predictive entropy per cell, nats) and ``prediction_map`` (argmax of
    the cell's mean probabilities, int64), for heat maps and overlays."""
    pred, _, bald = acc.maps()
    mean = acc.mean_probs()
    k = mean.shape[1]
    labels = mean.argmax(dim=1).flatten(1)
    pixels = torch.zeros((mean.shape[0], k), dtype=torch.int64, device=mean.device)
    pixels.scatter_add_(1, labels, torch.ones_like(labels))
    scores = PatchScores(
        top_fraction_mean(pred, fraction), top_fraction_mean(bald, fraction), pixels, embedding
    )
    if map_size is not None:
        scores.entropy_map = F.adaptive_avg_pool2d(pred[:, None], map_size)[:, 0]
        scores.prediction_map = F.adaptive_avg_pool2d(mean, map_size).argmax(dim=1)
    return scores


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[None]:
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


Trunk = Callable[[Tensor], tuple[Tensor, Tensor]]


@torch.inference_mode()
def score_mc(
    model: UNet,
    images: Tensor,
    samples: int = 8,
    *,
    masks: Tensor | None = None,
    generator: torch.Generator | None = None,
    top_fraction: float = 0.1,
    amp: bool = True,
    trunk: Trunk | None = None,
    map_size: int | None = None,
) -> PatchScores:
    """MC-dropout scores, cheap path: the trunk runs once, the head ``samples`` times.

    images (B, 3, H, W) float in [0, 1] on the model's device. ``masks`` (T, B, C) fixes the
    dropout masks (else drawn from ``generator``). The model is used in eval mode (BatchNorm
    frozen); only the head's dropout is sampled. ``trunk`` may replace
    ``model.forward_features`` (e.g. its ``torch.compile`` output).
    """
    model.eval()
    if masks is None:
        masks = model.head.sample_masks(samples, images.shape[0], generator=generator)
    acc = UncertaintyAccumulator()
    with _autocast(images.device, amp):
        features, embedding = (trunk or model.forward_features)(images)
        for mask in masks:
            acc.add_logits(model.head(features, mask))
    return _finish(acc, embedding.float(), top_fraction, map_size)


@torch.inference_mode()
def score_mc_naive(
    model: UNet,
    images: Tensor,
    masks: Tensor,
    *,
    top_fraction: float = 0.1,
    amp: bool = True,
    trunk: Trunk | None = None,
) -> PatchScores:
    """Reference MC dropout: T full forward passes, pass t using dropout mask ``masks[t]``.

    Same results as :func:`score_mc` for the same masks, at T times the trunk cost; kept for
    tests and the benchmark.
    """
    model.eval()
    acc = UncertaintyAccumulator()
    embedding = None
    with _autocast(images.device, amp):
        for mask in masks:
            features, emb = (trunk or model.forward_features)(images)
            acc.add_logits(model.head(features, mask))
            embedding = emb if embedding is None else embedding
    return _finish(acc, embedding.float(), top_fraction)


@torch.inference_mode()
def score_ensemble(
    models: Sequence[UNet],
    images: Tensor,
    *,
    top_fraction: float = 0.1,
    amp: bool = True,
    map_size: int | None = None,
) -> PatchScores:
    """Ensemble scores: one deterministic pass per member; embedding = members' mean."""
    acc = UncertaintyAccumulator()
    embeddings = []
    with _autocast(images.device, amp):
        for m in models:
            m.eval()
            features, emb = m.forward_features(images)
            acc.add_logits(m.head(features))
            embeddings.append(emb.float())
    return _finish(acc, torch.stack(embeddings).mean(0), top_fraction, map_size)


def score_patches(
    model: UNet | Sequence[UNet],
    images: np.ndarray,
    *,
    samples: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    top_fraction: float = 0.1,
    amp: bool = True,
    map_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Score candidate patches held as uint8 (N, H, W, 3) RGB (e.g. a ``PatchCache.images``).

    One model: MC dropout with ``samples`` head samples, masks drawn from a generator seeded
    with ``seed`` on the model's device. A sequence of models: ensemble. Returns numpy arrays
    ``entropy`` (N,), ``bald`` (N,), ``class_pixels`` (N, K) and ``embedding`` (N, E); with
    ``map_size`` S also ``entropy_map`` (N, S, S) float and ``prediction_map`` (N, S, S) int.
    """
    first = model if isinstance(model, UNet) else model[0]
    device = next(first.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        batch, _ = to_device_batch(np.asarray(images[start : start + batch_size]), None, device)
        if isinstance(model, UNet):
            scores = score_mc(
                model,
                batch,
                samples,
                generator=gen,
                top_fraction=top_fraction,
                amp=amp,
                map_size=map_size,
            )
        else:
            scores = score_ensemble(
                model, batch, top_fraction=top_fraction, amp=amp, map_size=map_size
            )
        parts.append(scores.numpy())
    if not parts:
        raise ValueError("no patches to score")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
