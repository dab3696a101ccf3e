"""U-Net family segmentation network with a thin stochastic head, and its versioned weights file.

Pure module: torch and the standard library only (the GPU benchmark imports it).

The network splits into a deterministic *trunk* (encoder + decoder, BatchNorm in eval mode) and a
thin *head*: channel dropout over the trunk's final full-resolution features followed by 1x1
convolutions. All of the stochasticity lives in the head, so Monte Carlo dropout runs the trunk
once per patch and samples only the head (see ``learning.uncertainty``). Channel dropout is used,
rather than element-wise dropout, because a channel mask folds into the first 1x1 convolution's
weights: one sample costs one small batched matmul and a (B, C) random draw, not a full-resolution
mask.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

WEIGHTS_FORMAT = "histocrowd.segmentation-weights"
WEIGHTS_VERSION = 1


class WeightsFormatError(ValueError):
    """A weights file is not ours, or was written by a format version this code cannot read."""


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`UNet`; stored in every weights file.

    ``depth`` counts resolution levels (``depth - 1`` poolings); level ``i`` has
    ``base_width * 2**i`` channels. ``dropout`` is the head's channel-dropout probability.
    ``head_hidden`` > 0 inserts a hidden 1x1 layer (with ReLU) in the head.
    """

    in_channels: int = 3
    num_classes: int = 4
    depth: int = 4
    base_width: int = 32
    dropout: float = 0.5
    head_hidden: int = 0

    def __post_init__(self) -> None:
        if self.depth < 1 or self.base_width < 1 or self.num_classes < 2:
            raise ValueError(f"invalid UNetConfig: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UNetConfig:
        """Build from a dict (e.g. settings or a weights file), rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown UNetConfig keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data))


class ConvBlock(nn.Sequential):
    """Two 3x3 conv + BatchNorm + ReLU layers; (B, c_in, H, W) -> (B, c_out, H, W).

    ``last_relu=False`` leaves the output linear (the trunk's final features, see UNet).
    """

    def __init__(self, c_in: int, c_out: int, last_relu: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if last_relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Encoder(nn.Module):
    """Contracting path; returns the feature map of every level, full resolution first."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        widths = [config.base_width * 2**i for i in range(config.depth)]
        c_in = config.in_channels
        self.stages = nn.ModuleList()
        for w in widths:
            self.stages.append(ConvBlock(c_in, w))
            c_in = w

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, C_in, H, W) float -> list of (B, base*2**i, H/2**i, W/2**i)."""
        skips = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            skips.append(x)
        return skips


class Decoder(nn.Module):
    """Expanding path: transposed-conv upsampling, skip concatenation, conv block."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        widths = [config.base_width * 2**i for i in range(config.depth)]
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for i in reversed(range(config.depth - 1)):
            self.ups.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2))
            self.blocks.append(ConvBlock(2 * widths[i], widths[i], last_relu=i > 0))

    def forward(self, skips: list[Tensor]) -> Tensor:
        """Encoder features -> (B, base_width, H, W) full-resolution features."""
        x = skips[-1]
        for up, block, skip in zip(self.ups, self.blocks, reversed(skips[:-1]), strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
        return x


class StochasticHead(nn.Module):
    """Channel dropout over the trunk features, then 1x1 convolution(s) to class logits.

    A dropout *mask* has shape (B, C) with entries 0 or ``1 / (1 - p)``; it scales the input
    channels, which is the same as scaling the columns of the first 1x1 weight, so a masked head
    is a batched matmul (B, out, C) @ (B, C, H*W).
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.p = config.dropout
        c = config.base_width
        hidden = config.head_hidden
        self.first = nn.Conv2d(c, hidden or config.num_classes, 1)
        self.second = nn.Conv2d(hidden, config.num_classes, 1) if hidden else None

    def sample_masks(
        self, samples: int, batch: int, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw ``samples`` dropout masks per patch: (T, B, C) float32, on the head's device."""
        c = self.first.in_channels
        device = self.first.weight.device
        keep = torch.rand((samples, batch, c), generator=generator, device=device) >= self.p
        return keep.float() / (1.0 - self.p)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, C, H, W) features -> (B, K, H, W) logits.

        ``mask`` (B, C) applies that dropout mask; without one, dropout follows ``self.training``.
        """
        if mask is None:
            h = self.first(F.dropout2d(features, self.p, self.training))
        else:
            b, c, hgt, wid = features.shape
            weight = self.first.weight.view(1, -1, c) * mask.to(features.dtype)[:, None, :]
            # features.flatten(2) is a view for both contiguous and channels_last layouts
            # (bmm takes the transposed operand as is), so no copy of the big tensor is made.
            flat = torch.bmm(weight.to(features.dtype), features.reshape(b, c, hgt * wid))
            h = (flat + self.first.bias.view(1, -1, 1).to(flat.dtype)).view(b, -1, hgt, wid)
        if self.second is not None:
            h = self.second(F.relu(h))
        return h


class UNet(nn.Module):
    """U-Net: (B, in_channels, H, W) float images in [0, 1] -> (B, num_classes, H, W) logits.

    Any H, W works: inputs are padded (replicate) to a multiple of ``2**(depth-1)`` and the
    logits cropped back.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.head = StochasticHead(config)

    def _pad(self, x: Tensor) -> tuple[Tensor, int, int]:
        m = 2 ** (self.config.depth - 1)
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x, h, w

    def forward_features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Run the deterministic trunk.

        Returns full-resolution features (B, base_width, H, W) and a patch embedding
        (B, base_width * 2**(depth-1)): the global mean of the bottleneck features, used by
        diversity-based selection.
        """
        x, h, w = self._pad(images * 2.0 - 1.0)  # centre [0, 1] inputs; no dataset statistics
        skips = self.encoder(x)
        features = self.decoder(skips)[..., :h, :w]
        embedding = skips[-1].float().mean(dim=(2, 3))
        return features, embedding

    def forward(self, images: Tensor, mask: Tensor | None = None) -> Tensor:
        """(B, C_in, H, W) in [0, 1] -> (B, K, H, W) logits; ``mask`` (B, C) fixes head dropout."""
        features, _ = self.forward_features(images)
        return self.head(features, mask)


def build_model(config: UNetConfig | Mapping[str, Any]) -> UNet:
    """Build an untrained :class:`UNet` from a config or a plain dict (e.g. from settings)."""
    if not isinstance(config, UNetConfig):
        config = UNetConfig.from_dict(config)
    return UNet(config)


def load_pretrained_encoder(model: UNet, path: str | os.PathLike[str]) -> None:
    """Load encoder weights from ``path`` into ``model`` in place (nothing is downloaded).

    ``path`` may be one of our weights files (its ``encoder.*`` entries are used) or a plain
    state dict of the encoder, with or without an ``encoder.`` prefix. Shapes must match.
    """
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(data, dict) and data.get("format") == WEIGHTS_FORMAT:
        _check_version(data, path)
        data = data["state_dict"]
    if not isinstance(data, Mapping):
        raise WeightsFormatError(f"{path}: expected a state dict, got {type(data).__name__}")
    prefix = "encoder." if any(k.startswith("encoder.") for k in data) else ""
    state = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
    missing, unexpected = model.encoder.load_state_dict(state, strict=False)
    if missing:
        raise WeightsFormatError(f"{path}: encoder weights missing {missing[:5]}...")
    logger.info("loaded pretrained encoder from %s (%d ignored keys)", path, len(unexpected))


def _check_version(data: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    version = data.get("version")
    if version != WEIGHTS_VERSION:
        raise WeightsFormatError(
            f"{path}: weights format version {version!r} is not supported "
            f"(this code reads version {WEIGHTS_VERSION}); retrain or convert the model"
        )


def weights_payload(model: UNet, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The dict that :func:`save_weights` writes (tensors on CPU, plain Python metadata)."""
    module = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    return {
        "format": WEIGHTS_FORMAT,
        "version": WEIGHTS_VERSION,
        "architecture": {"name": "unet", **asdict(module.config)},
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "metadata": dict(metadata or {}),
    }


def save_weights(
    model: UNet, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
) -> None:
    """Write a versioned weights file atomically (temp file + rename).

    ``metadata`` must hold only plain Python values (str, int, float, bool, lists, dicts) so that
    the file loads with ``weights_only=True``.
    """
    atomic_torch_save(weights_payload(model, metadata), path)


def load_weights(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[UNet, dict[str, Any]]:
    """Read a weights file; return the model (eval mode) and its metadata.

    Raises :class:`WeightsFormatError` for a foreign file or an unknown format version.
    """
    data = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(data, dict) or data.get("format") != WEIGHTS_FORMAT:
        raise WeightsFormatError(f"{path}: not a {WEIGHTS_FORMAT} file")
    _check_version(data, path)
    arch = dict(data["architecture"])
    if arch.pop("name", None) != "unet":
        raise WeightsFormatError(f"{path}: unknown architecture {data['architecture']!r}")
    model = build_model(arch)
    model.load_state_dict(data["state_dict"])
    model.to(map_location).eval()
    return model, dict(data.get("metadata", {}))


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``.

    A task killed mid-write (visibility timeout, OOM) leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
