"""Training loop: loss and metrics by hand, learning on a synthetic slide, exact chunked resume."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from learning.augment import AugmentConfig
from learning.data import IGNORE, PatchCache
from learning.networks import UNetConfig, load_weights
from learning.training import (
    ProgressEvent,
    SegmentationMetrics,
    TrainConfig,
    lr_factor,
    segmentation_loss,
    train,
)
from slides.synthetic import SyntheticSpec, render_region

# One thread: the CI box is shared, and oneDNN with two threads on contended cores is several
# times slower than one thread (measured: 1.4 s vs 0.09 s per step).
torch.set_num_threads(1)


def test_ignored_pixels_change_neither_loss_nor_gradient() -> None:
    logits = torch.randn(2, 3, 6, 6, requires_grad=True)
    labels = torch.randint(0, 3, (2, 6, 6), dtype=torch.uint8)
    labels[:, :2] = IGNORE
    weights = torch.tensor([0.5, 1.0, 2.0])
    loss = segmentation_loss(logits, labels, weights, dice_weight=1.0)
    loss.backward()
    assert torch.equal(logits.grad[:, :, :2], torch.zeros_like(logits.grad[:, :, :2]))
    changed = logits.detach().clone()
    changed[:, :, :2] = 100 * torch.randn_like(changed[:, :, :2])
    assert torch.allclose(segmentation_loss(changed, labels, weights, 1.0), loss.detach())


def test_perfect_prediction_has_near_zero_loss() -> None:
    labels = torch.randint(0, 3, (2, 8, 8))
    logits = 50.0 * torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    assert float(segmentation_loss(logits, labels, None, 1.0)) < 1e-4


def test_dice_per_class_and_calibration_error_by_hand() -> None:
    # Five pixels; class-1 probabilities 0.1, 0.6, 0.8, 0.4 and one ignored pixel.
    # truth [0, 0, 1, 1], prediction [0, 1, 1, 0]: each class has TP 1, FP 1, FN 1
    #   -> Dice = 2*1 / (2*1 + 1 + 1) = 0.5 for both classes.
    # confidence [0.9, 0.6, 0.8, 0.6], correct [1, 0, 1, 0]; 10 bins:
    #   bin 6: conf 0.6, acc 0, 2 px -> |0 - 0.6| * 2/4 = 0.300
    #   bin 8: conf 0.8, acc 1, 1 px -> 0.2 * 1/4 = 0.050
    #   bin 9: conf 0.9, acc 1, 1 px -> 0.1 * 1/4 = 0.025      ECE = 0.375
    p1 = torch.tensor([0.1, 0.6, 0.8, 0.4, 0.99])
    logits = torch.log(torch.stack([1 - p1, p1]))[None, :, None, :]  # (1, 2, 1, 5)
    labels = torch.tensor([[[0, 0, 1, 1, IGNORE]]], dtype=torch.uint8)
    m = SegmentationMetrics(2, 10, torch.device("cpu"))
    m.update(logits, labels)
    np.testing.assert_allclose(m.dice(), [0.5, 0.5])
    assert m.ece() == pytest.approx(0.375)


def test_learning_rate_warms_up_then_decays_to_floor() -> None:
    factors = [lr_factor(s, 100, 0.1, 0.02) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert factors[-1] == pytest.approx(0.02, abs=1e-3)


# Glands are drawn 16-28 px in radius (default 70-160 px): a 64 px patch then holds whole glands
# at the native resolution nuclei need (radius 4-8 px), which keeps the model small enough to
# learn both in well under 90 s of one CPU core.
def _spec(seed: int, size: int) -> SyntheticSpec:
    return SyntheticSpec(
        size,
        size,
        seed=seed,
        mpp=0.5,
        gland_radius_um=(8.0, 14.0),
        gland_density=0.9,
        tissue_coverage=0.8,
        tissue_blobs=2,
    )


def _patches(seed: int, size: int, count: int, patch: int = 64) -> PatchCache:
    """``count`` random patches (at least half tissue) from a synthetic slide with ground truth."""
    rgb, lab = render_region(_spec(seed, size), 0, 0, size, size)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    while len(images) < count:
        y, x = rng.integers(0, size - patch, 2)
        window = lab[y : y + patch, x : x + patch]
        if (window > 0).mean() >= 0.5:
            images.append(rgb[y : y + patch, x : x + patch])
            labels.append(window)
    return PatchCache.from_arrays(np.stack(images), np.stack(labels))


@pytest.mark.timeout(150)
def test_small_unet_learns_glands_and_nuclei_on_a_synthetic_slide(tmp_path: Path) -> None:
    train_set = _patches(seed=11, size=1536, count=512)
    val_set = _patches(seed=12, size=1024, count=96)  # another slide: other stain, other objects
    present = np.bincount(val_set.labels.ravel(), minlength=4)
    assert (present[2:] > 1000).all(), present  # glands and nuclei really are in the val set
    config = TrainConfig(
        network=UNetConfig(num_classes=4, depth=4, base_width=8, dropout=0.2),
        epochs=8,
        batch_size=16,
        lr=3e-3,
        patience=10,
        seed=0,
        device="cpu",
    )
    events: list[ProgressEvent] = []
    start = time.perf_counter()
    result = train(config, train_set, val_set, tmp_path / "ckpt.pt", progress=events.append,
                   weights_path=tmp_path / "weights.pt")  # fmt: skip
    seconds = time.perf_counter() - start
    dice = result.metrics["dice"]
    print(f"trained in {seconds:.1f} s, dice per class {np.round(dice, 3).tolist()}")
    assert result.finished and seconds <= 90
    assert dice[2] >= 0.8, f"gland Dice {dice[2]:.3f}"
    assert dice[3] >= 0.8, f"nucleus Dice {dice[3]:.3f}"
    assert 0 <= result.metrics["ece"] < 0.2
    assert [e.epoch for e in events] == list(range(1, 9))
    assert all(e.images_per_s > 0 and math.isfinite(e.loss) for e in events)
    model, meta = load_weights(tmp_path / "weights.pt")
    assert model.config == config.network
    assert meta["metrics"]["dice"] == dice


def _tiny_config(**kw: object) -> TrainConfig:
    base = {
        "network": UNetConfig(num_classes=3, depth=2, base_width=4, dropout=0.3),
        "epochs": 3,
        "batch_size": 8,
        "lr": 5e-3,
        "patience": 5,
        "seed": 3,
        "device": "cpu",
        "augment": AugmentConfig(scale=0.1, scale_prob=0.5),
    }
    return TrainConfig(**(base | kw))


def _tiny_data(seed: int, n: int) -> PatchCache:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, (n, 16, 16), dtype=np.uint8)
    labels[:, :2] = IGNORE
    images = (labels[..., None] * 60 + rng.integers(0, 40, (n, 16, 16, 3))).astype(np.uint8)
    return PatchCache.from_arrays(images, labels)


def _final_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_run_split_into_chunks_ends_with_the_same_weights_as_one_run(tmp_path: Path) -> None:
    data, val = _tiny_data(0, 32), _tiny_data(1, 8)
    config = _tiny_config()
    whole = train(config, data, val, tmp_path / "a.pt", weights_path=tmp_path / "a.w")
    assert whole.finished and whole.epoch == 3

    first = train(config, data, val, tmp_path / "b.pt", max_epochs_this_chunk=1)
    assert not first.finished and first.epoch == 1 and first.metrics is None
    torch.manual_seed(999)  # a worker runs other things between chunks; RNG state is restored
    np.random.default_rng(999)
    second = train(config, data, val, tmp_path / "b.pt", max_epochs_this_chunk=1)
    assert not second.finished and second.epoch == 2
    last = train(config, data, val, tmp_path / "b.pt", 5, weights_path=tmp_path / "b.w")
    assert last.finished and last.epoch == 3

    a, b = _final_state(tmp_path / "a.w"), _final_state(tmp_path / "b.w")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert last.metrics["dice"] == whole.metrics["dice"]
    # a redelivered task finds the run finished and does nothing
    again = train(config, data, val, tmp_path / "b.pt", 1)
    assert again.finished and again.metrics == last.metrics


def test_resume_refuses_a_checkpoint_from_another_config(tmp_path: Path) -> None:
    data, val = _tiny_data(0, 16), _tiny_data(1, 8)
    train(_tiny_config(), data, val, tmp_path / "c.pt", max_epochs_this_chunk=1)
    with pytest.raises(ValueError, match="different config.*lr"):
        train(_tiny_config(lr=1e-2), data, val, tmp_path / "c.pt", 1)


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    data, val = _tiny_data(0, 16), _tiny_data(1, 8)
    # lr 0: validation Dice never improves after epoch 1, so patience 2 stops after epoch 3
    result = train(_tiny_config(lr=0.0, epochs=10, patience=2), data, val, tmp_path / "d.pt")
    assert result.finished and result.epoch == 3 and result.metrics["best_epoch"] == 1


def test_time_bounded_chunk_stops_at_an_epoch_end_and_resumes(tmp_path: Path) -> None:
    data, val = _tiny_data(0, 16), _tiny_data(1, 8)
    config = _tiny_config(epochs=4)
    # A budget too small for two epochs: the chunk checkpoints after the first and returns.
    first = train(config, data, val, tmp_path / "t.pt", max_seconds=1e-6)
    assert not first.finished and first.epoch == 1
    rest = train(config, data, val, tmp_path / "t.pt")
    assert rest.finished and rest.epoch == 4
    with pytest.raises(ValueError, match=">= 1"):
        train(config, data, val, tmp_path / "u.pt", max_epochs_this_chunk=0)
