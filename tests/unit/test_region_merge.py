"""One region's merge (pure): figures, escalation rules, and reliability from synthetic raters."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.region_merge import (
    ACCEPTED,
    NEEDS_ADJUDICATION,
    NEEDS_MORE,
    Prior,
    Thresholds,
    escalation_status,
    merge_masks,
)


def _masks(*columns: tuple[int, int], size: int = 20) -> np.ndarray:
    """Raters who each mark rows 0..9 of columns [a, b) as class 1 on a size x size grid."""
    masks = np.zeros((len(columns), size, size), np.int16)
    for r, (a, b) in enumerate(columns):
        masks[r, 0:10, a:b] = 1
    return masks


def test_figures_on_a_hand_case():
    # A: cols 0-9, B: 0-9, C: 1-10 (100 px each). Dice AB = 1, AC = BC = 2*90/200 = 0.9:
    # mean 0.9333. Contested (share 2/3 < 0.8): column 0 and column 10 of rows 0-9 = 20 px of 400.
    merged = merge_masks(_masks((0, 10), (0, 10), (1, 11)), method="majority_vote", n_classes=2)
    assert merged.dice == pytest.approx((1 + 0.9 + 0.9) / 3)
    assert merged.contested.sum() == 20
    assert merged.contested_fraction == pytest.approx(20 / 400)
    assert (merged.labels[0:10, 0:10] == 1).all() and merged.labels[0, 10] == 0
    assert merged.vote_share.shape == (2, 20, 20)
    assert merged.raters[0]["dice"] == pytest.approx(1.0)
    assert merged.raters[2]["dice"] == pytest.approx(0.9)


def test_cannot_assess_is_left_out_and_nothing_counts_as_background():
    masks = _masks((0, 10), (0, 10), (0, 10))
    masks[1] = -1  # cannot assess
    masks[2] = 0  # nothing
    merged = merge_masks(masks, method="staple", n_classes=2)
    assert not merged.raters[1]["rated"] and merged.n_rated == 2
    assert merged.dice == pytest.approx(0.0)  # A marks 100 px, C none
    everyone_cannot = merge_masks(np.full((2, 4, 4), -1, np.int16), method="staple", n_classes=2)
    assert (everyone_cannot.labels == -1).all() and everyone_cannot.n_rated == 0
    assert not everyone_cannot.contested.any()


def test_multiclass_staple_is_used_for_more_than_two_classes():
    masks = _masks((0, 10), (0, 10), (0, 10))
    masks[:, 12:15, 0:5] = 2
    merged = merge_masks(masks, method="staple", n_classes=3)
    assert merged.method == "staple_multiclass"
    assert (merged.labels[12:15, 0:5] == 2).all()
    assert merged.dice == pytest.approx(1.0)


T = Thresholds(
    contested_share=0.8,
    accept_dice=0.8,
    max_contested_fraction=0.05,
    escalate_dice=0.5,
    k=3,
    k_max=5,
)


@pytest.mark.parametrize(
    ("dice", "contested", "n_rated", "n_worked", "expected"),
    [
        (0.95, 0.01, 3, 3, ACCEPTED),
        (0.80, 0.05, 3, 3, ACCEPTED),  # both bounds inclusive
        (0.95, 0.06, 3, 3, NEEDS_MORE),  # agreeing overall, too many contested pixels
        (0.79, 0.00, 3, 3, NEEDS_MORE),
        (0.50, 0.30, 3, 4, NEEDS_MORE),
        (0.60, 0.30, 3, 5, NEEDS_ADJUDICATION),  # k_max annotators already worked on it
        (0.49, 0.00, 3, 3, NEEDS_ADJUDICATION),
        (1.00, 0.00, 1, 3, NEEDS_MORE),  # two could not assess: too little evidence
        (1.00, 0.00, 1, 5, NEEDS_ADJUDICATION),
    ],
)
def test_escalation_follows_the_thresholds(dice, contested, n_rated, n_worked, expected):
    assert (
        escalation_status(
            dice=dice,
            contested_fraction=contested,
            n_rated=n_rated,
            n_worked=n_worked,
            thresholds=T,
        )
        == expected
    )


def test_a_single_rater_is_enough_when_k_is_one():
    one = Thresholds(k=1, k_max=1)
    assert (
        escalation_status(dice=1.0, contested_fraction=0.0, n_rated=1, n_worked=1, thresholds=one)
        == ACCEPTED
    )


def _synthetic(
    rng: np.random.Generator, rates: list[tuple[float, float]], size: int = 96
) -> tuple[np.ndarray, np.ndarray]:
    """Blob truth, then each rater flips pixels: keeps foreground with p, background with q."""
    yy, xx = np.mgrid[0:size, 0:size]
    truth = np.zeros((size, size), bool)
    for _ in range(4):
        cy, cx, radius = rng.integers(10, size - 10, 2).tolist() + [int(rng.integers(6, 16))]
        truth |= (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    masks = np.empty((len(rates), size, size), np.int16)
    for r, (sens, spec) in enumerate(rates):
        keep = rng.random((size, size))
        masks[r] = np.where(truth, keep < sens, keep >= spec)
    return truth, masks


def test_staple_reliability_ranks_synthetic_raters_in_their_true_order():
    # Sensitivity falls and specificity falls rater by rater: both rankings must come out.
    rates = [(0.97, 0.99), (0.9, 0.96), (0.8, 0.92), (0.65, 0.85)]
    rng = np.random.default_rng(7)
    truth, masks = _synthetic(rng, rates)
    merged = merge_masks(masks, method="staple", n_classes=2)
    sens = [r["sensitivity"] for r in merged.raters]
    spec = [r["specificity"] for r in merged.raters]
    assert sens == sorted(sens, reverse=True), sens
    assert spec == sorted(spec, reverse=True), spec
    for (true_sens, true_spec), est_sens, est_spec in zip(rates, sens, spec, strict=True):
        assert abs(est_sens - true_sens) < 0.06 and abs(est_spec - true_spec) < 0.03
    # Consensus beats the best single rater against the truth.
    best = max(((m == 1) == truth).mean() for m in masks)
    assert ((merged.labels == 1) == truth).mean() >= best


def test_carried_priors_start_staple_and_unknown_raters_get_a_default():
    rng = np.random.default_rng(3)
    _, masks = _synthetic(rng, [(0.95, 0.98), (0.9, 0.95), (0.7, 0.9)])
    cold = merge_masks(masks, method="staple", n_classes=2)
    warm = merge_masks(
        masks, method="staple", n_classes=2, priors=[Prior(0.95, 0.98), None, Prior(1.0, 0.0)]
    )
    # The same fixed point whichever the start (EM converges on these data).
    np.testing.assert_array_equal(cold.labels, warm.labels)
    for a, b in zip(cold.raters, warm.raters, strict=True):
        assert a["sensitivity"] == pytest.approx(b["sensitivity"], abs=1e-4)
