"""Device augmentation: exact dihedral alignment, HED against skimage, ignore preserved."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import hed2rgb, rgb2hed

from learning.augment import (
    IGNORE,
    AugmentConfig,
    augment_batch,
    brightness_contrast,
    dihedral,
    hed_jitter,
    hed_to_rgb,
    rescale,
    rgb_to_hed,
)

torch.set_num_threads(1)


def _tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """One 3x3 patch whose every pixel is distinct: image channel c = value + 10c, label = value.

    0 1 2
    3 4 5
    6 7 8
    """
    lab = torch.arange(9, dtype=torch.uint8).view(1, 3, 3)
    img = torch.stack([lab[0].float() + 10 * c for c in range(3)])[None]
    return img, lab


@pytest.mark.parametrize(
    ("fx", "fy", "tr", "expected"),
    [
        (False, False, False, [[0, 1, 2], [3, 4, 5], [6, 7, 8]]),
        (True, False, False, [[2, 1, 0], [5, 4, 3], [8, 7, 6]]),  # left-right mirror
        (False, True, False, [[6, 7, 8], [3, 4, 5], [0, 1, 2]]),  # up-down mirror
        (False, False, True, [[0, 3, 6], [1, 4, 7], [2, 5, 8]]),  # transpose
        (True, False, True, [[6, 3, 0], [7, 4, 1], [8, 5, 2]]),  # 90 degrees clockwise
        (False, True, True, [[2, 5, 8], [1, 4, 7], [0, 3, 6]]),  # 90 degrees anticlockwise
        (True, True, False, [[8, 7, 6], [5, 4, 3], [2, 1, 0]]),  # 180 degrees
        (True, True, True, [[8, 5, 2], [7, 4, 1], [6, 3, 0]]),  # anti-transpose
    ],
)
def test_flips_and_rotations_move_image_and_mask_together(
    fx: bool, fy: bool, tr: bool, expected: list[list[int]]
) -> None:
    img, lab = _tiny()
    flags = [torch.tensor([v]) for v in (fx, fy, tr)]
    out_img, out_lab = dihedral(img, lab, *flags)
    assert out_lab[0].tolist() == expected
    for c in range(3):
        assert (out_img[0, c] - 10 * c).tolist() == expected


def test_random_geometry_keeps_image_and_mask_aligned_per_sample() -> None:
    # Label encoded in the image; without zoom every output pixel must still match its label.
    lab = torch.randint(0, 4, (16, 8, 8), dtype=torch.uint8)
    lab[:, 0, :3] = IGNORE
    img = lab[:, None].float().expand(-1, 3, -1, -1) / 255.0
    gen = torch.Generator().manual_seed(0)
    cfg = AugmentConfig(scale=0, hed_alpha=0, hed_beta=0, brightness=0, contrast=0)
    out_img, out_lab = augment_batch(img, lab, cfg, gen)
    assert torch.equal((out_img[:, 0] * 255).round().to(torch.uint8), out_lab)
    assert not torch.equal(out_lab, lab)  # something did move
    assert (out_lab == IGNORE).sum(dim=(1, 2)).tolist() == [3] * 16


def test_zoom_resamples_labels_nearest_and_marks_outside_pixels_ignore() -> None:
    lab = torch.zeros(2, 16, 16, dtype=torch.uint8)
    lab[:, :8] = 1
    lab[:, 4:6, 4:6] = IGNORE
    img = lab[:, None].float().expand(-1, 3, -1, -1).clamp(max=1.0).contiguous()
    out_img, out_lab = rescale(img, lab, torch.tensor([0.8, 1.25]))
    # zoom out: a border of source-less pixels becomes IGNORE; no new class values appear
    assert set(out_lab[0].unique().tolist()) <= {0, 1, IGNORE}
    assert bool((out_lab[0, 0] == IGNORE).all()) and bool((out_lab[0, :, -1] == IGNORE).all())
    # zoom in: everything comes from inside the patch; the ignore block grows, never vanishes
    assert int((out_lab[1] == IGNORE).sum()) >= 4
    assert bool((out_lab[1, 0] == 1).all()) and bool((out_lab[1, -1] == 0).all())
    # labels are carried with the image: where the label is 1/0, the image is (nearly) 1/0
    inside = out_lab[1] != IGNORE
    agree = (out_img[1, 0][inside].round() == out_lab[1][inside].float()).float().mean()
    assert float(agree) > 0.9
    same_img, same_lab = rescale(img, lab, torch.tensor([1.0, 1.0]))
    assert torch.equal(same_lab, lab) and torch.equal(same_img, img)


def test_ignore_value_survives_full_augmentation() -> None:
    gen = torch.Generator().manual_seed(1)
    lab = torch.randint(0, 3, (32, 16, 16), dtype=torch.uint8)
    lab[:, 6:10, 6:10] = IGNORE
    img = torch.rand(32, 3, 16, 16)
    out_img, out_lab = augment_batch(img, lab, AugmentConfig(scale=0.2, scale_prob=1.0), gen)
    assert out_lab.dtype == torch.uint8 and out_img.shape == img.shape
    assert set(out_lab.unique().tolist()) <= {0, 1, 2, IGNORE}
    # the 4x4 ignore block is still there in every patch (zoom <= 1.2 cannot shrink it away)
    assert bool(((out_lab == IGNORE).sum(dim=(1, 2)) >= 9).all())
    assert float(out_img.min()) >= 0.0 and float(out_img.max()) <= 1.0


def test_augmentation_is_reproducible_from_the_generator() -> None:
    img, lab = torch.rand(4, 3, 8, 8), torch.randint(0, 3, (4, 8, 8), dtype=torch.uint8)
    a = augment_batch(img, lab, AugmentConfig(), torch.Generator().manual_seed(5))
    b = augment_batch(img, lab, AugmentConfig(), torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_rgb_to_hed_and_back_match_skimage() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (2, 12, 12, 3), dtype=np.uint8)
    x = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0
    ours = rgb_to_hed(x).permute(0, 2, 3, 1).numpy()
    theirs = np.stack([rgb2hed(im) for im in rgb])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    back = hed_to_rgb(torch.from_numpy(theirs).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(back, np.stack([hed2rgb(h) for h in theirs]), atol=1e-5)


def test_hed_round_trip_recovers_stains_and_colours() -> None:
    # Non-negative stain amounts -> RGB -> stains is the identity (no clamping involved).
    stains = torch.rand(3, 3, 10, 10, dtype=torch.float64).float() * 0.15
    rgb = hed_to_rgb(stains)
    assert torch.allclose(rgb_to_hed(rgb), stains, atol=1e-5)
    assert torch.allclose(hed_to_rgb(rgb_to_hed(rgb)), rgb, atol=1e-5)


def test_hed_jitter_is_identity_at_rest_and_scales_stains_like_skimage() -> None:
    stains = torch.rand(2, 3, 6, 6) * 0.1
    rgb = hed_to_rgb(stains)
    same = hed_jitter(rgb, torch.ones(2, 3), torch.zeros(2, 3))
    assert torch.allclose(same, rgb, atol=1e-5)
    alpha = torch.tensor([[1.1, 0.9, 1.0], [0.95, 1.05, 1.0]])
    beta = torch.tensor([[0.01, -0.005, 0.0], [0.0, 0.01, 0.0]])
    jittered = hed_jitter(rgb, alpha, beta)
    moved = stains * alpha[:, :, None, None] + beta[:, :, None, None]
    expected = hed2rgb(moved.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(jittered.permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)


def test_brightness_contrast_by_hand() -> None:
    # mean 0.5; (x - 0.5) * 2 + 0.5 + 0.1: 0.4 -> 0.4, 0.6 -> 0.8; clamped to [0, 1]
    img = torch.tensor([0.4, 0.6, 0.4, 0.6]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    out = brightness_contrast(img.clone(), torch.tensor([0.1]), torch.tensor([2.0]))
    assert torch.allclose(out[0, 0], torch.tensor([[0.4, 0.8], [0.4, 0.8]]))
