"""Seeded, resumable, chunked training loop for the segmentation network (pure torch).

Pure module: torch, numpy and the standard library only (the GPU benchmark imports it).

A run is a sequence of bounded chunks: ``train(config, cache, val_cache, checkpoint_path,
max_epochs_this_chunk=n)`` runs at most ``n`` epochs, checkpoints after every epoch (model,
optimiser, scheduler, early-stopping state and every RNG involved) and returns whether the run has
finished. Calling it again resumes from the checkpoint; a finished checkpoint returns at once, so
a task that is delivered twice does no harm. Chunks therefore stay under the broker's visibility
timeout, and a chunked run ends with the same weights as an uninterrupted one (same seed, same
device).

Loss: class-weighted cross-entropy + soft Dice, both ignoring label 255. Optimiser: AdamW with
linear warm-up and cosine decay per step. On CUDA: bf16 autocast, channels_last, optional
``torch.compile``. Early stopping on the mean validation Dice of the foreground classes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from learning.augment import AugmentConfig, augment_batch
from learning.data import IGNORE, PatchCache, PatchLoader
from learning.networks import UNet, UNetConfig, atomic_torch_save, build_model, save_weights

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "histocrowd.training-checkpoint"
CHECKPOINT_VERSION = 1
# Config fields that may change between chunks without changing the result's meaning.
_RESUMABLE_CHANGES = {"compile", "device"}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; stored in its checkpoint.

    ``class_weights``: "auto" (inverse square root of training pixel frequency), "none", or one
    weight per class. ``foreground``: classes whose mean Dice drives early stopping (default:
    all but class 0). ``device``: "auto" picks CUDA when available.
    """

    network: UNetConfig = field(default_factory=UNetConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epochs: int = 50
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.02
    dice_weight: float = 1.0
    class_weights: str | tuple[float, ...] = "auto"
    patience: int = 10
    min_delta: float = 1e-4
    foreground: tuple[int, ...] | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    ece_bins: int = 15

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        known = {f.name for f in fields(cls)}
        if unknown := set(data) - known:
            raise ValueError(f"unknown TrainConfig keys {sorted(unknown)}")
        if isinstance(data.get("network"), dict):
            data["network"] = UNetConfig.from_dict(data["network"])
        if isinstance(data.get("augment"), dict):
            data["augment"] = AugmentConfig(**data["augment"])
        for key in ("class_weights", "foreground"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class ProgressEvent:
    """Reported after every epoch. ``images_per_s``: training images per second (this epoch)."""

    epoch: int
    epochs: int
    loss: float
    val_dice: float
    val_dice_per_class: list[float]
    images_per_s: float
    lr: float


@dataclass(frozen=True)
class TrainResult:
    """Outcome of one chunk. ``metrics`` is set once ``finished``: ``dice`` (per class, NaN for a
    class absent from both truth and prediction), ``mean_dice`` (foreground), ``ece``,
    ``best_epoch``, ``epochs_run``."""

    finished: bool
    epoch: int
    best_dice: float
    metrics: dict[str, Any] | None


def resolve_device(name: str) -> torch.device:
    """ "auto" -> cuda if available else cpu; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def segmentation_loss(
    logits: Tensor, labels: Tensor, class_weights: Tensor | None, dice_weight: float
) -> Tensor:
    """Weighted cross-entropy + ``dice_weight`` * (1 - soft Dice), ignoring label 255.

    logits (B, K, H, W) any float dtype (computed in float32); labels (B, H, W) uint8/int64.
    Soft Dice is pooled over the batch per class and averaged over the classes present in the
    batch (smoothing 1).
    Returns a scalar float32 tensor.
    """
    logits = logits.float()
    k = logits.shape[1]
    target = labels.long()
    loss = F.cross_entropy(logits, target, weight=class_weights, ignore_index=IGNORE)
    if dice_weight > 0:
        valid = (target != IGNORE).unsqueeze(1)
        probs = torch.softmax(logits, dim=1) * valid
        # Comparison rather than F.one_hot: no int64 (B, H, W, K) tensor, no permute copy.
        classes = torch.arange(k, device=target.device).view(1, k, 1, 1)
        onehot = ((target.unsqueeze(1) == classes) & valid).float()
        inter = (probs * onehot).sum(dim=(0, 2, 3))
        denom = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
        dice = (2.0 * inter + 1.0) / (denom + 1.0)
        # Average over classes present in this batch only. An absent class's Dice is 1 / (1 +
        # sum p), which drives its probability to exactly zero everywhere; for a rare class
        # (background in tissue-rich patches) that killed the class for good (its features
        # died); cross-entropy alone already penalises its false positives.
        present = (onehot.sum(dim=(0, 2, 3)) > 0).float()
        mean_dice = (dice * present).sum() / present.sum().clamp_min(1.0)
        loss = loss + dice_weight * (1.0 - mean_dice)
    return loss


class SegmentationMetrics:
    """Accumulates a confusion matrix and calibration bins over batches (on the device)."""

    def __init__(self, num_classes: int, bins: int, device: torch.device) -> None:
        self.k, self.bins = num_classes, bins
        self.confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
        self.bin_count = torch.zeros(bins, dtype=torch.float64, device=device)
        self.bin_conf = torch.zeros(bins, dtype=torch.float64, device=device)
        self.bin_correct = torch.zeros(bins, dtype=torch.float64, device=device)

    def update(self, logits: Tensor, labels: Tensor) -> None:
        """logits (B, K, H, W); labels (B, H, W) with 255 = ignore."""
        probs = torch.softmax(logits.float(), dim=1)
        conf, pred = probs.max(dim=1)
        target = labels.long()
        valid = target != IGNORE
        t, p, c = target[valid], pred[valid], conf[valid].double()
        self.confusion += torch.bincount(t * self.k + p, minlength=self.k * self.k)
        idx = (c * self.bins).long().clamp_(max=self.bins - 1)
        self.bin_count += torch.bincount(idx, minlength=self.bins)
        self.bin_conf += torch.bincount(idx, weights=c, minlength=self.bins)
        self.bin_correct += torch.bincount(idx, weights=(t == p).double(), minlength=self.bins)

    def dice(self) -> np.ndarray:
        """(K,) float64 Dice per class, NaN where the class is absent from truth and prediction."""
        cm = self.confusion.view(self.k, self.k).cpu().numpy().astype(np.float64)
        tp = np.diag(cm)
        denom = cm.sum(0) + cm.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, 2 * tp / denom, np.nan)

    def ece(self) -> float:
        """Expected calibration error of the top-class probability (equal-width bins)."""
        n = float(self.bin_count.sum())
        if n == 0:
            return float("nan")
        gap = (self.bin_correct - self.bin_conf).abs().sum()
        return float(gap / n)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[None]:
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(
    model: UNet, loader: PatchLoader, config: TrainConfig, device: torch.device
) -> SegmentationMetrics:
    """Validation pass in eval mode (no dropout, BatchNorm frozen, no augmentation)."""
    model.eval()
    metrics = SegmentationMetrics(model.config.num_classes, config.ece_bins, device)
    for images, labels in loader.batches(None):
        with _autocast(device, config.amp):
            logits = model(images.float().div_(255.0))
        metrics.update(logits, labels)
    return metrics


def foreground_mean(dice: np.ndarray, foreground: Iterable[int] | None) -> float:
    """Mean Dice over foreground classes, ignoring NaN (absent) classes; 0 when none present."""
    idx = list(foreground) if foreground is not None else list(range(1, len(dice)))
    values = dice[idx]
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else 0.0


def auto_class_weights(cache: PatchCache, num_classes: int) -> Tensor:
    """Inverse square-root frequency weights, normalised to a pixel-weighted mean of 1.

    The square root (not plain inverse frequency) keeps rare classes (nuclei) from dominating
    and destabilising early training; weights are clipped to [0.1, 10]. Absent classes get 1.
    """
    counts = cache.class_counts(num_classes).astype(np.float64)
    freq = counts / max(counts.sum(), 1.0)
    w = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(freq, 1e-12)), 1.0)
    w = w / max((w * freq).sum(), 1e-12) if counts.sum() else w
    return torch.tensor(np.clip(w, 0.1, 10.0), dtype=torch.float32)


def lr_factor(step: int, total: int, warmup_fraction: float, min_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_ratio``; ``step`` counts optimiser steps."""
    warm = max(1, int(total * warmup_fraction))
    if step < warm:
        return (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


class Trainer:
    """The model, optimiser, schedule and one optimisation step (shared with the benchmark)."""

    def __init__(self, config: TrainConfig, device: torch.device, steps_per_epoch: int) -> None:
        self.config, self.device = config, device
        torch.manual_seed(config.seed)  # model initialisation
        self.model = build_model(config.network).to(device)
        if config.channels_last:  # faster on cuDNN (bf16) and on CPU (oneDNN) alike
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward: Callable[[Tensor], Tensor] = self.model
        if config.compile and device.type == "cuda":
            self.forward = torch.compile(self.model)
        fused = device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused
        )
        total = max(1, config.epochs * steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, total, config.warmup_fraction, config.min_lr_ratio),
        )
        self.augment_generator = torch.Generator(device=device).manual_seed(config.seed + 1)
        self.class_weights: Tensor | None = None

    def prepare(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 device batch (B, 3, H, W), (B, H, W) -> augmented float images and labels."""
        x = images.float().div_(255.0)
        return augment_batch(x, labels, self.config.augment, self.augment_generator)

    def step(self, images: Tensor, labels: Tensor) -> Tensor:
        """One optimiser step on float images (B, 3, H, W) in [0, 1]; returns the loss (no sync)."""
        self.model.train()
        with _autocast(self.device, self.config.amp):
            logits = self.forward(images)
        loss = segmentation_loss(logits, labels, self.class_weights, self.config.dice_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()


def _rng_state(np_rng: np.random.Generator, trainer: Trainer) -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np_rng.bit_generator.state,
        "augment": trainer.augment_generator.get_state(),
    }


def _set_rng_state(state: dict[str, Any], np_rng: np.random.Generator, trainer: Trainer) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_rng.bit_generator.state = state["numpy"]
    trainer.augment_generator.set_state(state["augment"])


def _load_checkpoint(path: Path, config: TrainConfig) -> dict[str, Any] | None:
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: unsupported checkpoint {ckpt.get('format')!r} version "
            f"{ckpt.get('version')!r} (expected {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION})"
        )
    saved, now = ckpt["config"], config.to_dict()
    changed = {k for k in now if saved.get(k) != now[k]} - _RESUMABLE_CHANGES
    if changed:
        raise ValueError(f"{path}: checkpoint was made with a different config ({sorted(changed)})")
    return ckpt


def train(
    config: TrainConfig,
    cache: PatchCache,
    val_cache: PatchCache,
    checkpoint_path: str | Path,
    max_epochs_this_chunk: int | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
    weights_path: str | Path | None = None,
    weights_metadata: dict[str, Any] | None = None,
    max_seconds: float | None = None,
    init_state_dict: dict[str, Tensor] | None = None,
) -> TrainResult:
    """Run (or resume) training for at most ``max_epochs_this_chunk`` epochs.

    ``max_seconds`` also ends the chunk early, at the end of the epoch after which another
    epoch (as long as the mean so far) would pass it: a task then stays inside the broker's
    visibility timeout however fast the device is. Chunk ends never change the result.

    ``cache``/``val_cache``: uint8 patches at the working resolution. The checkpoint at
    ``checkpoint_path`` is created or resumed; it is rewritten atomically after every epoch.
    When the run finishes (all epochs, or no foreground-Dice gain for ``patience`` epochs) the
    best epoch's weights are kept, validated once more for the final metrics and, if
    ``weights_path`` is given, saved there in the versioned weights format.
    ``init_state_dict`` warm-starts a new run (e.g. the previous model version's weights); it
    is ignored when resuming from a checkpoint, which already holds the trained state.
    """
    if max_epochs_this_chunk is not None and max_epochs_this_chunk < 1:
        raise ValueError(f"max_epochs_this_chunk must be >= 1, got {max_epochs_this_chunk}")
    chunk_start = time.perf_counter()
    path = Path(checkpoint_path)
    ckpt = _load_checkpoint(path, config)
    if ckpt is not None and ckpt["finished"]:
        return TrainResult(True, ckpt["epoch"], ckpt["best"]["dice"], ckpt["metrics"])
    device = resolve_device(config.device)
    loader = PatchLoader(cache, config.batch_size, device)
    val_loader = PatchLoader(val_cache, config.batch_size, device, drop_last=False)
    trainer = Trainer(config, device, len(loader))
    k = config.network.num_classes
    if config.class_weights == "auto":
        trainer.class_weights = auto_class_weights(cache, k).to(device)
    elif config.class_weights != "none":
        trainer.class_weights = torch.tensor(config.class_weights, dtype=torch.float32).to(device)
    np_rng = np.random.default_rng(config.seed)
    best: dict[str, Any] = {"dice": -1.0, "epoch": 0, "state_dict": None}
    epoch, bad_epochs, history = 0, 0, []
    if ckpt is None and init_state_dict is not None:
        trainer.model.load_state_dict(init_state_dict)
    if ckpt is not None:
        trainer.model.load_state_dict(ckpt["model"])
        trainer.optimizer.load_state_dict(ckpt["optimizer"])
        trainer.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"], np_rng, trainer)
        epoch, bad_epochs, best, history = (
            ckpt["epoch"],
            ckpt["bad_epochs"],
            ckpt["best"],
            ckpt["history"],
        )
        logger.info("resumed %s at epoch %d", path, epoch)

    first_epoch = epoch
    stop = epoch + (max_epochs_this_chunk or config.epochs)
    finished = False
    while epoch < min(stop, config.epochs):
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        n_images = 0
        for images, labels in loader.batches(np_rng):
            total += trainer.step(*trainer.prepare(images, labels))
            n_images += images.shape[0]
        loss = float(total) / max(1, len(loader))  # one host sync per epoch
        seconds = time.perf_counter() - start
        metrics = evaluate(trainer.model, val_loader, config, device)
        dice = metrics.dice()
        score = foreground_mean(dice, config.foreground)
        epoch += 1
        if score > best["dice"] + config.min_delta:
            state = {k_: v.detach().cpu().clone() for k_, v in trainer.model.state_dict().items()}
            best, bad_epochs = {"dice": score, "epoch": epoch, "state_dict": state}, 0
        else:
            bad_epochs += 1
        lr = trainer.scheduler.get_last_lr()[0]
        history.append({"epoch": epoch, "loss": loss, "val_dice": score})
        event = ProgressEvent(
            epoch, config.epochs, loss, score, _floats(dice), n_images / seconds, lr
        )
        logger.info("epoch %d/%d loss %.4f dice %.4f %.0f img/s", epoch, config.epochs, loss,
                    score, event.images_per_s)  # fmt: skip
        if progress is not None:
            progress(event)
        finished = epoch >= config.epochs or bad_epochs >= config.patience
        if finished:
            break
        _save_checkpoint(path, config, trainer, np_rng, epoch, bad_epochs, best, history)
        if max_seconds is not None:
            elapsed = time.perf_counter() - chunk_start
            if elapsed * (1 + 1 / (epoch - first_epoch)) > max_seconds:
                break

    if not finished:
        return TrainResult(False, epoch, best["dice"], None)
    trainer.model.load_state_dict(best["state_dict"])
    final = evaluate(trainer.model, val_loader, config, device)
    result_metrics = {
        "dice": _floats(final.dice()),
        "mean_dice": foreground_mean(final.dice(), config.foreground),
        "ece": final.ece(),
        "best_epoch": best["epoch"],
        "epochs_run": epoch,
        "history": history,
    }
    if weights_path is not None:
        meta = {**(weights_metadata or {}), "metrics": result_metrics, "train": config.to_dict()}
        save_weights(trainer.model, weights_path, meta)
    _save_checkpoint(path, config, trainer, np_rng, epoch, bad_epochs, best, history,
                     metrics=result_metrics)  # fmt: skip
    return TrainResult(True, epoch, best["dice"], result_metrics)


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def _save_checkpoint(
    path: Path,
    config: TrainConfig,
    trainer: Trainer,
    np_rng: np.random.Generator,
    epoch: int,
    bad_epochs: int,
    best: dict[str, Any],
    history: list[dict[str, Any]],
    metrics: dict[str, Any] | None = None,
) -> None:
    finished = metrics is not None
    atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": config.to_dict(),
            "epoch": epoch,
            "finished": finished,
            "metrics": metrics,
            "model": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
            # A finished run needs no optimiser or RNG state; dropping them keeps it small.
            "optimizer": None if finished else trainer.optimizer.state_dict(),
            "scheduler": None if finished else trainer.scheduler.state_dict(),
            "rng": None if finished else _rng_state(np_rng, trainer),
            "bad_epochs": bad_epochs,
            "best": best if not finished else {**best, "state_dict": None},
            "history": history,
        },
        path,
    )
