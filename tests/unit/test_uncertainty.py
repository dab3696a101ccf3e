"""Predictive entropy and BALD against values worked out by hand; candidate aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from learning.networks import UNetConfig, build_model
from learning.uncertainty import (
    pixel_uncertainty,
    score_ensemble,
    score_mc,
    score_patches,
    top_fraction_mean,
)

torch.set_num_threads(1)  # the CI box is shared; one thread is also the fastest under load


LN2 = math.log(2.0)


def _samples(*probs: list[float]) -> torch.Tensor:
    """One pixel per sample: list of K probabilities -> (T, B=1, K, H=1, W=1)."""
    return torch.tensor(probs, dtype=torch.float32)[:, None, :, None, None]


@pytest.mark.parametrize(
    ("samples", "predictive", "expected", "bald"),
    [
        # [1,0] and [0,1]: mean [.5,.5] -> H = ln 2; each sample is certain -> E[H] = 0;
        # BALD = ln 2 - 0 = ln 2 (the samples disagree completely).
        ([[1.0, 0.0], [0.0, 1.0]], LN2, 0.0, LN2),
        # [.5,.5] twice: H = ln 2, E[H] = ln 2, BALD = 0 (ambiguous, but the samples agree).
        ([[0.5, 0.5], [0.5, 0.5]], LN2, LN2, 0.0),
        # [1,0] twice: everything 0.
        ([[1.0, 0.0], [1.0, 0.0]], 0.0, 0.0, 0.0),
        # [.5,.5,0] and [.5,0,.5]: mean [.5,.25,.25]
        # H = -(.5 ln .5 + 2 * .25 ln .25) = .5 ln2 + .5 * 2 ln2 = 1.5 ln 2;
        # each sample has entropy ln 2 -> E[H] = ln 2; BALD = .5 ln 2.
        ([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]], 1.5 * LN2, LN2, 0.5 * LN2),
        # four samples [1,0],[1,0],[1,0],[0,1]: mean [.75,.25]
        # H = -(.75 ln .75 + .25 ln .25) = 0.5623351; E[H] = 0; BALD = 0.5623351.
        ([[1, 0], [1, 0], [1, 0], [0, 1]], 0.5623351, 0.0, 0.5623351),
    ],
)
def test_entropy_and_bald_match_hand_worked_values(
    samples: list[list[float]], predictive: float, expected: float, bald: float
) -> None:
    h, e, b = pixel_uncertainty(_samples(*samples))
    assert float(h) == pytest.approx(predictive, abs=1e-6)
    assert float(e) == pytest.approx(expected, abs=1e-6)
    assert float(b) == pytest.approx(bald, abs=1e-6)


def test_top_decile_mean_aggregates_the_most_uncertain_pixels() -> None:
    values = torch.arange(20, dtype=torch.float32).view(1, 4, 5)  # 0..19
    # top 10 % of 20 pixels = 2 pixels: (18 + 19) / 2 = 18.5
    assert float(top_fraction_mean(values, 0.1)) == pytest.approx(18.5)
    # top 25 % = 5 pixels: (15 + ... + 19) / 5 = 17
    assert float(top_fraction_mean(values, 0.25)) == pytest.approx(17.0)
    # a fraction below one pixel still takes the single maximum
    assert float(top_fraction_mean(values, 0.001)) == pytest.approx(19.0)


def _model(seed: int, dropout: float = 0.5) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(UNetConfig(depth=2, base_width=4, num_classes=3, dropout=dropout)).eval()


def test_identical_ensemble_members_have_zero_bald_and_positive_entropy() -> None:
    x = torch.rand(3, 3, 16, 16)
    same = score_ensemble([_model(0), _model(0)], x)
    assert torch.allclose(same.bald, torch.zeros(3), atol=1e-6)
    assert bool((same.entropy > 0).all())
    different = score_ensemble([_model(0), _model(1)], x)
    assert bool((different.bald > 0).all())


def test_class_areas_count_every_pixel_once() -> None:
    x = torch.rand(2, 3, 12, 20)
    scores = score_mc(_model(0), x, 4, generator=torch.Generator().manual_seed(0))
    assert scores.class_pixels.shape == (2, 3)
    assert scores.class_pixels.sum(dim=1).tolist() == [240, 240]


def test_score_patches_from_uint8_is_seeded_and_returns_numpy() -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    model = _model(0)
    a = score_patches(model, images, samples=4, batch_size=2, seed=7)
    b = score_patches(model, images, samples=4, batch_size=2, seed=7)
    assert a["entropy"].shape == (5,) and a["bald"].shape == (5,)
    assert a["class_pixels"].shape == (5, 3) and a["embedding"].shape == (5, 8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    ensemble = score_patches([_model(0), _model(1)], images, batch_size=4)
    assert ensemble["bald"].shape == (5,)
