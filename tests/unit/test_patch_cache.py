"""Patch cache: compact uint8 storage (in memory or memory-mapped) and batches for the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from learning.data import IGNORE, PatchCache, PatchLoader, to_device_batch

torch.set_num_threads(1)


def _cache(n: int = 10, size: int = 8) -> PatchCache:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # a fingerprint per patch
    labels = rng.integers(0, 3, (n, size, size), dtype=np.uint8)
    labels[:, 0, 0] = np.arange(n)
    return PatchCache.from_arrays(images, labels)


def test_rejects_wrong_dtype_and_mismatched_shapes() -> None:
    with pytest.raises(TypeError, match="uint8"):
        PatchCache(np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        PatchCache.from_arrays(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="do not match"):
        PatchCache.from_arrays(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 5)))


def test_on_disk_cache_is_memory_mapped_uint8_and_starts_ignored(tmp_path: Path) -> None:
    cache = PatchCache.create(tmp_path / "c", 3, 4, 6)
    assert isinstance(cache.images, np.memmap) and cache.images.dtype == np.uint8
    assert bool((cache.labels == IGNORE).all())  # unlabelled until written
    cache.images[1] = 7
    cache.labels[1, :2] = 2
    cache.flush()
    reopened = PatchCache.open(tmp_path / "c")
    assert isinstance(reopened.labels, np.memmap)
    assert len(reopened) == 3 and reopened.patch_shape == (4, 6)
    assert bool((reopened.images[1] == 7).all())
    assert reopened.labels[1].tolist()[0] == [2] * 6 and reopened.labels[1, 2, 0] == IGNORE
    with pytest.raises(ValueError, match="read-only"):
        reopened.labels[0, 0, 0] = 1
    assert cache.nbytes == 3 * 4 * 6 * 4  # 3 bytes of RGB + 1 byte of label per pixel


def test_save_copies_an_in_memory_cache_to_disk(tmp_path: Path) -> None:
    cache = _cache()
    disk = cache.save(tmp_path / "d")
    np.testing.assert_array_equal(PatchCache.open(tmp_path / "d").images, cache.images)
    np.testing.assert_array_equal(disk.labels, cache.labels)


def test_class_counts_exclude_ignore() -> None:
    labels = np.array([[[0, 1], [1, IGNORE]], [[2, IGNORE], [IGNORE, 1]]], dtype=np.uint8)
    cache = PatchCache.from_arrays(np.zeros((2, 2, 2, 3), np.uint8), labels)
    assert cache.class_counts(3).tolist() == [1, 3, 1]


def test_device_batch_is_float_unit_range_channels_last() -> None:
    cache = _cache()
    img, lab = to_device_batch(cache.images[:4], cache.labels[:4], "cpu")
    assert img.shape == (4, 3, 8, 8) and img.dtype == torch.float32
    assert img.is_contiguous(memory_format=torch.channels_last)
    assert float(img.max()) <= 1.0 and lab.dtype == torch.uint8
    assert torch.allclose(img[2, :, 3, 5] * 255, torch.from_numpy(cache.images[2, 3, 5]).float())


@pytest.mark.parametrize("resident", [True, False])
def test_loader_visits_every_patch_once_per_epoch_in_seeded_order(resident: bool) -> None:
    cache = _cache(n=10)
    loader = PatchLoader(cache, 3, "cpu", max_device_bytes=None if resident else 0)
    assert len(loader) == 3  # drop_last: 10 // 3
    batches = list(loader.batches(np.random.default_rng(5)))
    seen = [int(i) for img, _ in batches for i in img[:, 0, 0, 0]]
    expected = np.random.default_rng(5).permutation(10)[:9].tolist()
    assert seen == expected
    for img, lab in batches:
        assert img.shape == (3, 3, 8, 8) and img.dtype == torch.uint8 and lab.shape == (3, 8, 8)
        assert torch.equal(img[:, 0, 0, 0], lab[:, 0, 0])  # image and label stay paired
        assert img.is_contiguous(memory_format=torch.channels_last)


def test_resident_and_streamed_loaders_agree(tmp_path: Path) -> None:
    disk = _cache(n=9).save(tmp_path / "c")
    a = list(PatchLoader(disk, 4, "cpu").batches(np.random.default_rng(1)))
    b = list(PatchLoader(disk, 4, "cpu", max_device_bytes=0).batches(np.random.default_rng(1)))
    for (ia, la), (ib, lb) in zip(a, b, strict=True):
        assert torch.equal(ia, ib) and torch.equal(la, lb)


def test_validation_loader_keeps_the_last_partial_batch_in_order() -> None:
    loader = PatchLoader(_cache(n=10), 4, "cpu", drop_last=False)
    sizes = [img.shape[0] for img, _ in loader.batches(None)]
    assert sizes == [4, 4, 2]
