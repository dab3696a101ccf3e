"""Patch cache: compact uint8 image patches and label masks that feed the GPU.

Pure module: numpy, torch and the standard library only (the GPU benchmark imports it).

Slides are read once, when the cache is built (by the Django side); the training loop reads only
from here. Images are (N, H, W, 3) uint8 RGB and labels (N, H, W) uint8 class indices, with
:data:`IGNORE` (255) for pixels that must not count (unlabelled, outside the region). Large sets
live in memory-mapped ``.npy`` files so that a worker never holds more than it touches.

Storing images as (N, H, W, 3) has a useful side effect: ``torch.from_numpy(x).permute(0, 3, 1, 2)``
is an NCHW tensor already in ``channels_last`` memory format, which is what cuDNN wants in bf16.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

logger = logging.getLogger(__name__)

IGNORE = 255
_META = "meta.json"
_CACHE_VERSION = 1


@dataclass
class PatchCache:
    """N patches: ``images`` (N, H, W, 3) uint8 RGB, ``labels`` (N, H, W) uint8 (255 = ignore).

    Either array may be an ``np.memmap``. Build one with :meth:`from_arrays` (in memory),
    :meth:`create` + item assignment (on disk), and reopen with :meth:`open`.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.labels.dtype != np.uint8:
            raise TypeError("patch cache arrays must be uint8")
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3), got {self.images.shape}")
        if self.labels.shape != self.images.shape[:3]:
            raise ValueError(f"labels {self.labels.shape} do not match images {self.images.shape}")

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray) -> PatchCache:
        """Wrap in-memory arrays (converted to contiguous uint8)."""
        return cls(np.ascontiguousarray(images, np.uint8), np.ascontiguousarray(labels, np.uint8))

    @classmethod
    def create(cls, directory: str | Path, count: int, height: int, width: int) -> PatchCache:
        """Create an on-disk cache of ``count`` patches (labels filled with IGNORE), writable."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        images = np.lib.format.open_memmap(
            directory / "images.npy", mode="w+", dtype=np.uint8, shape=(count, height, width, 3)
        )
        labels = np.lib.format.open_memmap(
            directory / "labels.npy", mode="w+", dtype=np.uint8, shape=(count, height, width)
        )
        labels[:] = IGNORE
        meta = {"version": _CACHE_VERSION, "count": count, "height": height, "width": width}
        (directory / _META).write_text(json.dumps(meta))
        return cls(images, labels)

    @classmethod
    def open(cls, directory: str | Path, writable: bool = False) -> PatchCache:
        """Memory-map an on-disk cache made by :meth:`create` or :meth:`save`."""
        directory = Path(directory)
        meta = json.loads((directory / _META).read_text())
        if meta.get("version") != _CACHE_VERSION:
            raise ValueError(f"{directory}: patch cache version {meta.get('version')!r} unknown")
        mode = "r+" if writable else "r"
        return cls(
            np.load(directory / "images.npy", mmap_mode=mode),
            np.load(directory / "labels.npy", mmap_mode=mode),
        )

    def save(self, directory: str | Path) -> PatchCache:
        """Copy this cache to ``directory`` and return the memory-mapped copy."""
        out = PatchCache.create(directory, len(self), *self.patch_shape)
        out.images[:] = self.images
        out.labels[:] = self.labels
        out.flush()
        return out

    def flush(self) -> None:
        """Flush memory-mapped arrays to disk (no-op in memory)."""
        for a in (self.images, self.labels):
            if isinstance(a, np.memmap):
                a.flush()

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def patch_shape(self) -> tuple[int, int]:
        """(H, W) of every patch, in pixels at the project's working resolution."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def nbytes(self) -> int:
        return int(self.images.nbytes + self.labels.nbytes)

    def class_counts(self, num_classes: int, max_patches: int = 2048, seed: int = 0) -> np.ndarray:
        """Pixel count per class (IGNORE excluded), from at most ``max_patches`` sampled patches."""
        idx = np.arange(len(self))
        if len(idx) > max_patches:
            idx = np.sort(np.random.default_rng(seed).choice(idx, max_patches, replace=False))
        counts = np.zeros(num_classes, np.int64)
        for start in range(0, len(idx), 256):
            lab = np.asarray(self.labels[idx[start : start + 256]])
            counts += np.bincount(lab.ravel(), minlength=256)[:num_classes]
        return counts


def to_device_batch(
    images: np.ndarray | Tensor, labels: np.ndarray | Tensor | None, device: torch.device | str
) -> tuple[Tensor, Tensor | None]:
    """uint8 (B, H, W, 3) + (B, H, W) -> float (B, 3, H, W) in [0, 1] (channels_last) + uint8.

    The uint8 arrays are moved first and converted on the device (a quarter of the bytes).
    """
    device = torch.device(device)
    img = torch.as_tensor(images)
    pin = device.type == "cuda" and not img.is_cuda
    if pin:
        img = img.pin_memory()
    img = img.to(device, non_blocking=pin).permute(0, 3, 1, 2).float().div_(255.0)
    lab = None
    if labels is not None:
        lab = torch.as_tensor(labels)
        if pin:
            lab = lab.pin_memory()
        lab = lab.to(device, non_blocking=pin)
    return img, lab


class PatchLoader:
    """Random mini-batches from a :class:`PatchCache`, as device tensors.

    If the cache fits in ``max_device_bytes`` (default 8 GiB on CUDA, 1 GiB on CPU) it is copied
    to the device once and batches are gathered there (no host work per step). Otherwise a
    background thread gathers each batch from the (memory-mapped) arrays into pinned memory,
    one batch ahead of the GPU.

    Batch order comes from ``rng`` (a numpy Generator whose state the trainer checkpoints).
    Yields (images (B, 3, H, W) uint8, labels (B, H, W) uint8); images are channels_last.
    """

    def __init__(
        self,
        cache: PatchCache,
        batch_size: int,
        device: torch.device | str,
        *,
        max_device_bytes: int | None = None,
        drop_last: bool = True,
    ) -> None:
        self.cache = cache
        self.batch_size = min(batch_size, len(cache)) if drop_last else batch_size
        self.device = torch.device(device)
        self.drop_last = drop_last
        self._resident: tuple[Tensor, Tensor] | None = None
        if max_device_bytes is None:  # a GPU holds a few GiB of uint8 patches comfortably
            max_device_bytes = 8 << 30 if self.device.type == "cuda" else 1 << 30
        if cache.nbytes <= max_device_bytes:
            self._resident = (
                torch.from_numpy(np.ascontiguousarray(cache.images)).to(self.device),
                torch.from_numpy(np.ascontiguousarray(cache.labels)).to(self.device),
            )

    def __len__(self) -> int:
        n = len(self.cache)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batches(self, rng: np.random.Generator | None) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of batches; shuffled with ``rng``, in order when ``rng`` is None."""
        n = len(self.cache)
        order = rng.permutation(n) if rng is not None else np.arange(n)
        chunks = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(len(self))]
        if self._resident is not None:
            images, labels = self._resident
            # One host-to-device copy per epoch: a per-batch copy from pageable memory would
            # make the host wait for the GPU every step and stop it from queueing ahead.
            order_t = torch.from_numpy(order).to(self.device)
            for i in range(len(chunks)):
                t = order_t[i * self.batch_size : (i + 1) * self.batch_size]
                yield images.index_select(0, t).permute(0, 3, 1, 2), labels.index_select(0, t)
            return
        yield from self._streamed(chunks)

    def _streamed(self, chunks: list[np.ndarray]) -> Iterator[tuple[Tensor, Tensor]]:
        pin = self.device.type == "cuda"
        q: queue.Queue[tuple[Tensor, Tensor] | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def work() -> None:
            try:
                for idx in chunks:
                    if stop.is_set():
                        return
                    # Sorted indices read a memmap sequentially; the batch order is restored.
                    s = np.argsort(idx)
                    inv = np.empty_like(s)
                    inv[s] = np.arange(len(s))
                    img = torch.from_numpy(np.asarray(self.cache.images[idx[s]])[inv])
                    lab = torch.from_numpy(np.asarray(self.cache.labels[idx[s]])[inv])
                    if pin:
                        img, lab = img.pin_memory(), lab.pin_memory()
                    q.put((img, lab))
                q.put(None)
            except BaseException as exc:  # surfaced in the consumer, never swallowed
                q.put(exc)

        thread = threading.Thread(target=work, daemon=True, name="patch-loader")
        thread.start()
        try:
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                img, lab = item
                img = img.to(self.device, non_blocking=pin).permute(0, 3, 1, 2)
                yield img, lab.to(self.device, non_blocking=pin)
        finally:
            stop.set()
            while thread.is_alive():  # drain so the worker can finish its put()
                try:
                    q.get(timeout=0.1)
                except queue.Empty:
                    pass
