"""Histology augmentation on the device, batched: geometry, HED stain jitter, brightness/contrast.

Pure module: torch only (the GPU benchmark imports it).

Every function takes a whole batch and draws its randomness from an explicit
``torch.Generator`` on the batch's device, so a step issues a handful of kernels, never syncs
with the host, and is reproducible (the trainer checkpoints the generator state).

Images are float (B, 3, H, W) RGB in [0, 1]; labels are uint8 (B, H, W) class indices with
255 = ignore. Geometry moves labels with nearest sampling; pixels that come from outside the
patch get the ignore value, so no made-up label is ever trained on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE = 255

# Ruifrok & Johnston (2001) H&E-DAB stain vectors, as in skimage.color (rgb_from_hed); rows are
# the optical-density colours of haematoxylin, eosin and DAB.
RGB_FROM_HED = torch.tensor(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64
)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)
# skimage floors intensities at 1e-6 before the log and divides optical density by -log(1e-6),
# so stain values are in units of that maximum density; we keep its units to match rgb2hed.
_EPS = 1e-6
_LOG_ADJUST = math.log(_EPS)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; 0 disables a step.

    ``scale``: zoom factor drawn from [1/(1+scale), 1+scale] with probability ``scale_prob``.
    ``hed_alpha``/``hed_beta``: per-image stain factor in [1-a, 1+a] and shift in [-b, b] for
    each of H, E, D (after Tellez et al. 2018). The shift is in optical density (natural log):
    rgb2hed divides densities by -ln(1e-6) = 13.8, so in its units the shift is b / 13.8; the
    default 0.05 changes a pixel's intensity by about 5 % per stain at most.
    ``brightness``/``contrast``: additive shift in [-b, b] and factor in [1-c, 1+c].
    """

    dihedral: bool = True
    scale: float = 0.1
    scale_prob: float = 0.5
    hed_alpha: float = 0.05
    hed_beta: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1


def _uniform(
    shape: tuple[int, ...], lo: float, hi: float, gen: torch.Generator | None, device: torch.device
) -> Tensor:
    return torch.rand(shape, generator=gen, device=device) * (hi - lo) + lo


def rgb_to_hed(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) float RGB in [0, 1] -> (B, 3, H, W) H, E, DAB stain densities.

    Matches ``skimage.color.rgb2hed`` (same floor, units and clamping of negative stains).
    """
    od = torch.log(rgb.float().clamp_min(_EPS)) / _LOG_ADJUST
    m = HED_FROM_RGB.to(device=rgb.device, dtype=torch.float32)
    return torch.einsum("bihw,ij->bjhw", od, m).clamp_min(0.0)


def hed_to_rgb(hed: Tensor) -> Tensor:
    """(B, 3, H, W) stain densities -> (B, 3, H, W) RGB in [0, 1]; matches skimage hed2rgb."""
    m = RGB_FROM_HED.to(device=hed.device, dtype=torch.float32)
    log_rgb = torch.einsum("bihw,ij->bjhw", hed.float() * _LOG_ADJUST, m)
    return torch.exp(log_rgb).clamp(0.0, 1.0)


def hed_jitter(rgb: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """Scale and shift each stain: hed' = hed * alpha + beta, back to RGB in [0, 1].

    ``alpha``, ``beta``: (B, 3) per image and stain. The whole round trip is linear in log-RGB,
    so it is done as one per-image 3x3 matrix and offset (one log, one bmm, one exp). Unlike
    rgb2hed, negative stain values are not clamped, so alpha=1, beta=0 is exactly the identity.
    """
    h = HED_FROM_RGB.to(rgb.device)
    r = RGB_FROM_HED.to(rgb.device)
    mat = (h[None] * alpha.double()[:, None, :]) @ r  # (B, 3, 3): H diag(alpha) R
    offset = _LOG_ADJUST * (beta.double() @ r)  # (B, 3), in log-RGB
    log_rgb = torch.log(rgb.float().clamp_min(_EPS))
    out = torch.einsum("bihw,bij->bjhw", log_rgb, mat.float()) + offset.float()[:, :, None, None]
    return torch.exp(out).clamp_(0.0, 1.0)


def dihedral(
    images: Tensor, labels: Tensor, flip_x: Tensor, flip_y: Tensor, transpose: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-sample exact flips and transposition (together: the 8 rotations/reflections).

    ``flip_x``/``flip_y``/``transpose``: (B,) bool. Applied in the order transpose, flip_x
    (left-right), flip_y (up-down); e.g. transpose then flip_x is a 90-degree clockwise turn.
    Transposition needs square patches. images (B, C, H, W), labels (B, H, W); no resampling.
    """

    def apply(
        x: Tensor, lab: Tensor, on: Tensor, op: Callable[[Tensor], Tensor]
    ) -> tuple[Tensor, Tensor]:
        if not on.is_cuda and not bool(on.any()):
            return x, lab  # CPU shortcut; on CUDA the check would sync and torch.where is cheap
        return (
            torch.where(on[:, None, None, None], op(x), x),
            torch.where(on[:, None, None], op(lab), lab),
        )

    if images.shape[-1] == images.shape[-2]:
        images, labels = apply(images, labels, transpose, lambda t: t.transpose(-1, -2))
    images, labels = apply(images, labels, flip_x, lambda t: t.flip(-1))
    images, labels = apply(images, labels, flip_y, lambda t: t.flip(-2))
    return images, labels


def rescale(images: Tensor, labels: Tensor, zoom: Tensor) -> tuple[Tensor, Tensor]:
    """Zoom each sample about its centre by ``zoom`` (B,) (>1 enlarges), keeping H x W.

    Images: bilinear, reflected at the border. Labels: nearest, IGNORE where the source pixel
    lies outside the patch. Samples with zoom == 1 are returned unchanged (bit for bit).
    """
    b, _, h, w = images.shape
    theta = torch.zeros((b, 2, 3), device=images.device, dtype=torch.float32)
    theta[:, 0, 0] = 1.0 / zoom
    theta[:, 1, 1] = 1.0 / zoom
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    out = F.grid_sample(images.float(), grid, "bilinear", "reflection", align_corners=False)
    # Shift labels by one so that zero padding marks outside pixels; 0..256 is exact in float32.
    lab = F.grid_sample((labels[:, None].float() + 1.0), grid, "nearest", "zeros", False)[:, 0]
    lab = torch.where(lab == 0, float(IGNORE), lab - 1.0).to(labels.dtype)
    keep = zoom == 1.0
    out = torch.where(keep[:, None, None, None], images.float(), out).to(images.dtype)
    return out, torch.where(keep[:, None, None], labels, lab)


def brightness_contrast(images: Tensor, shift: Tensor, factor: Tensor) -> Tensor:
    """x' = (x - mean) * factor + mean + shift per image; (B,) shift, factor; clamped to [0, 1]."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    f = factor[:, None, None, None]
    return ((images - mean) * f + mean + shift[:, None, None, None]).clamp_(0.0, 1.0)


def augment_batch(
    images: Tensor,
    labels: Tensor,
    config: AugmentConfig,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Randomly augment a batch: geometry (image and mask together), stain, brightness/contrast.

    images (B, 3, H, W) float in [0, 1] (channels_last kept); labels (B, H, W) uint8.
    ``generator`` must live on the images' device. Returns new tensors of the same shapes.
    """
    b = images.shape[0]
    dev = images.device
    if config.dihedral:
        bits = torch.rand((3, b), generator=generator, device=dev) < 0.5
        images, labels = dihedral(images, labels, bits[0], bits[1], bits[2])
    if config.scale > 0 and config.scale_prob > 0:
        lo = -math.log1p(config.scale)
        zoom = torch.exp(_uniform((b,), lo, -lo, generator, dev))
        on = torch.rand((b,), generator=generator, device=dev) < config.scale_prob
        images, labels = rescale(images, labels, torch.where(on, zoom, torch.ones_like(zoom)))
    if config.hed_alpha > 0 or config.hed_beta > 0:
        a = _uniform((b, 3), 1 - config.hed_alpha, 1 + config.hed_alpha, generator, dev)
        beta = _uniform((b, 3), -config.hed_beta, config.hed_beta, generator, dev) / -_LOG_ADJUST
        images = hed_jitter(images, a, beta)
    if config.brightness > 0 or config.contrast > 0:
        shift = _uniform((b,), -config.brightness, config.brightness, generator, dev)
        factor = _uniform((b,), 1 - config.contrast, 1 + config.contrast, generator, dev)
        images = brightness_contrast(images, shift, factor)
    return images.contiguous(memory_format=torch.channels_last), labels
