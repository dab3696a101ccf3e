"""Hand-worked cases for annotation.consensus: every expectation is derived in the comments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from annotation import consensus as cs
from annotation.consensus import NOT_RATED

# Three raters, four pixels in one row, classes 0..2.
#   pixel:   0  1  2  3
#   rater0:  0  1  2  1
#   rater1:  0  1  1  2
#   rater2:  1  0  2  0
THREE_RATERS = np.array([[[0, 1, 2, 1]], [[0, 1, 1, 2]], [[1, 0, 2, 0]]], dtype=np.uint8)

# Multi-class EM case (three raters, four pixels, classes 0..2):
#   rater0 = rater1 = [0, 1, 2, 2], rater2 = [0, 1, 2, 0]
# Pixel 3 is where rater2 dissents.
DISSENT = np.array([[[0, 1, 2, 2]], [[0, 1, 2, 2]], [[0, 1, 2, 0]]], dtype=np.uint8)


# --- registry ---------------------------------------------------------------------------


def test_registry_lists_every_method() -> None:
    assert cs.method_names() == (
        "dawid_skene",
        "majority_vote",
        "staple",
        "staple_multiclass",
        "weighted_vote",
    )


def test_unknown_method_error_lists_the_known_names() -> None:
    with pytest.raises(cs.UnknownMethodError) as info:
        cs.get_method("median_vote")
    message = str(info.value)
    assert "median_vote" in message
    for name in cs.method_names():
        assert name in message


def test_run_consensus_dispatches_by_name() -> None:
    by_name = cs.run_consensus("majority_vote", THREE_RATERS, tie=7)
    direct = cs.majority_vote(THREE_RATERS, tie=7)
    assert by_name.method == "majority_vote"
    np.testing.assert_array_equal(by_name.labels, direct.labels)


def test_registering_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        cs.register_method("staple")(cs.staple)


# --- majority and weighted vote ---------------------------------------------------------


def test_majority_vote_hand_worked() -> None:
    result = cs.majority_vote(THREE_RATERS)
    # pixel0 votes 0,0,1 -> 0; pixel1 1,1,0 -> 1; pixel2 2,1,2 -> 2;
    # pixel3 1,2,0: a three-way tie -> lowest class id, 0.
    np.testing.assert_array_equal(result.labels, [[0, 1, 2, 0]])
    # Vote shares: pixel0 [2/3, 1/3, 0], pixel3 [1/3, 1/3, 1/3].
    np.testing.assert_allclose(result.posterior[:, 0, 0], [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(result.posterior[:, 0, 3], [1 / 3, 1 / 3, 1 / 3])
    # Overall vote shares: class0 4/12, class1 5/12, class2 3/12.
    np.testing.assert_allclose(result.prior, [4 / 12, 5 / 12, 3 / 12])
    assert result.iterations == 0 and result.converged


def test_majority_vote_tie_value_replaces_the_lowest_id() -> None:
    result = cs.majority_vote(THREE_RATERS, tie=9)
    np.testing.assert_array_equal(result.labels, [[0, 1, 2, 9]])


def test_majority_vote_two_raters_split_goes_to_lower_class() -> None:
    masks = np.array([[3, 0], [1, 2]], dtype=np.uint8)  # (R=2, N=2): 3 vs 1, 0 vs 2
    np.testing.assert_array_equal(cs.majority_vote(masks).labels, [1, 0])


def test_majority_vote_rater_confusion_against_the_consensus() -> None:
    raters = cs.majority_vote(THREE_RATERS).raters
    # Consensus [0, 1, 2, 0]; rater0 said [0, 1, 2, 1]:
    #   true 0 (pixels 0 and 3): said 0 once, 1 once -> row [1/2, 1/2, 0], support 2
    #   true 1 (pixel 1): said 1 -> [0, 1, 0]; true 2 (pixel 2): said 2 -> [0, 0, 1]
    np.testing.assert_allclose(raters.confusion[0], [[0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(raters.support[0], [2, 1, 1])
    # With tie=9 pixel 3 is undecided and left out: rater0's true-0 row is [1, 0, 0].
    tied = cs.majority_vote(THREE_RATERS, tie=9).raters
    np.testing.assert_allclose(tied.confusion[0, 0], [1, 0, 0])
    np.testing.assert_allclose(tied.support[0], [1, 1, 1])


def test_majority_vote_skips_unrated_votes_and_marks_unrated_pixels() -> None:
    masks = np.array(
        [
            [1, NOT_RATED, NOT_RATED],
            [0, 1, NOT_RATED],
            [NOT_RATED, 1, NOT_RATED],
        ],
        dtype=np.int16,
    )
    result = cs.majority_vote(masks)
    # item0: one vote each for 0 and 1 -> tie -> 0; item1: two votes for 1 -> 1;
    # item2: nobody rated it -> NOT_RATED, with a uniform share over the 2 classes.
    np.testing.assert_array_equal(result.labels, [0, 1, NOT_RATED])
    np.testing.assert_allclose(result.posterior[:, 2], [0.5, 0.5])


def test_majority_vote_single_rater_is_that_rater() -> None:
    mask = np.array([[[0, 2], [1, 1]]], dtype=np.uint8)
    result = cs.majority_vote(mask)
    np.testing.assert_array_equal(result.labels, mask[0])
    np.testing.assert_allclose(result.raters.confusion[0], np.eye(3))


def test_majority_vote_all_empty_masks_are_background() -> None:
    result = cs.majority_vote(np.zeros((3, 4, 5), dtype=np.uint8))
    assert result.labels.shape == (4, 5)
    assert (result.labels == 0).all()
    assert (result.posterior == 1.0).all()  # one class, every vote for it


def test_weighted_vote_heavier_rater_wins() -> None:
    result = cs.weighted_vote(THREE_RATERS, weights=[1, 1, 3])
    # pixel0: class0 1+1 = 2, class1 3 -> 1 (share [2/5, 3/5, 0]);
    # pixel1: class1 2, class0 3 -> 0; pixel2: class2 1+3 = 4 -> 2;
    # pixel3: class1 1, class2 1, class0 3 -> 0.
    np.testing.assert_array_equal(result.labels, [[1, 0, 2, 0]])
    np.testing.assert_allclose(result.posterior[:, 0, 0], [0.4, 0.6, 0.0])


def test_weighted_vote_sums_equal_up_to_rounding_tie() -> None:
    masks = np.array([[1], [1], [0]], dtype=np.uint8)
    # class1: 0.1 + 0.2 (= 0.30000000000000004 in floating point), class0: 0.3: a tie.
    np.testing.assert_array_equal(cs.weighted_vote(masks, weights=[0.1, 0.2, 0.3]).labels, [0])
    tied = cs.weighted_vote(masks, weights=[0.1, 0.2, 0.3], tie=5)
    np.testing.assert_array_equal(tied.labels, [5])


def test_weighted_vote_pixel_with_only_zero_weights_is_unrated() -> None:
    masks = np.array([[1, 1], [NOT_RATED, 0]], dtype=np.int8)
    # item0: only rater0 (weight 0) rated it -> no vote; item1: rater1 (weight 1) says 0.
    np.testing.assert_array_equal(cs.weighted_vote(masks, weights=[0, 1]).labels, [-1, 0])


@pytest.mark.parametrize("weights", [[1, 1], [1, -1, 1], [1, np.nan, 1]])
def test_weighted_vote_rejects_bad_weights(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weights"):
        cs.weighted_vote(THREE_RATERS, weights=weights)


# --- binary STAPLE ----------------------------------------------------------------------

NESTED = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=np.uint8)  # rater1 marks a subset


def test_staple_nested_masks_hand_worked() -> None:
    result = cs.staple(NESTED)
    # Prior g = 3 foreground votes / 8 = 3/8. Start W = [1, 1/2, 0, 0] (vote share).
    # M: p0 = (1 + 1/2)/(3/2) = 1, p1 = 1/(3/2) = 2/3,
    #    q0 = (1 + 1)/(0 + 1/2 + 1 + 1) = 0.8, q1 = (1/2 + 1 + 1)/(5/2) = 1.
    # E: pixel1 (fg, bg): a = 1 * 1/3, b = 0.2 * 1 -> W = (3/8 * 1/3)/(3/8 * 1/3 + 5/8 * 0.2)
    #    = 0.125/0.25 = 1/2; pixel0: b = 0 -> 1; pixels 2, 3: a = (1 - p0) = 0 -> 0.
    # W did not change, so the second M-step repeats p and q: converged at iteration 2.
    np.testing.assert_allclose(result.posterior[1], [1, 0.5, 0, 0], atol=1e-12)
    np.testing.assert_allclose(result.raters.sensitivity, [1, 2 / 3])
    np.testing.assert_allclose(result.raters.specificity, [0.8, 1])
    assert result.iterations == 2 and result.converged
    assert result.labels[0] == 1 and result.labels[2] == 0 and result.labels[3] == 0
    np.testing.assert_allclose(result.prior, [5 / 8, 3 / 8])


def test_class_posterior_is_one_class_of_the_posterior() -> None:
    result = cs.staple(NESTED)
    # Foreground map of the nested case above: [1, 1/2, 0, 0]; background is 1 minus it.
    np.testing.assert_allclose(result.class_posterior(1), [1, 0.5, 0, 0], atol=1e-12)
    np.testing.assert_allclose(result.class_posterior(0), [0, 0.5, 1, 1], atol=1e-12)
    np.testing.assert_array_equal(result.class_posterior(1), result.posterior[1])
    with pytest.raises(ValueError, match="label"):
        result.class_posterior(2)


def test_staple_posterior_of_exactly_one_half_is_background() -> None:
    masks = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    result = cs.staple(masks)
    # g = 1/2, W = [1/2, 1/2]; M: p = q = 1/2 for both; E: a = b = 1/4 -> W = 1/2 exactly
    # (all dyadic fractions). 0.5 is not > 0.5, so both pixels are background.
    np.testing.assert_array_equal(result.posterior[1], [0.5, 0.5])
    np.testing.assert_array_equal(result.labels, [0, 0])


def test_staple_given_prior_is_used() -> None:
    result = cs.staple(NESTED, prior=0.5, max_iter=1)
    # Same first M-step as the nested case (p, q do not depend on g); E with g = 1/2:
    # pixel1 W = (1/2 * 1/3)/(1/2 * 1/3 + 1/2 * 0.2) = (1/6)/(1/6 + 1/10) = 0.625 -> label 1.
    assert result.posterior[1, 1] == pytest.approx(0.625)
    assert result.labels[1] == 1
    assert result.iterations == 1 and not result.converged  # stopped by the cap


def test_staple_initial_rates_at_the_fixed_point_stop_after_one_iteration() -> None:
    masks = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    # From p = q = 1/2 the first E-step gives W = 1/2, the M-step gives p = q = 1/2 again:
    # nothing moved since the given rates, so it stops at iteration 1 (vote start: 2).
    result = cs.staple(masks, sensitivity=[0.5, 0.5], specificity=[0.5, 0.5])
    assert result.iterations == 1 and result.converged
    assert cs.staple(masks).iterations == 2


def test_staple_initial_rates_steer_the_result() -> None:
    masks = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    # Rater0 trusted (p = q = 0.9), rater1 not (p = q = 0.6), g = 1/2. First E-step:
    # pixel0 (rater0 fg, rater1 bg): a = 0.9 * 0.4 = 0.36, b = 0.1 * 0.6 = 0.06 -> 6/7.
    result = cs.staple(masks, sensitivity=[0.9, 0.6], specificity=[0.9, 0.6], max_iter=0)
    assert result.posterior[1, 0] == pytest.approx(0.36 / 0.42)
    assert result.labels[0] == 1


def test_staple_requires_both_rates_or_neither() -> None:
    with pytest.raises(ValueError, match="both"):
        cs.staple(NESTED, sensitivity=[0.9, 0.9])


def test_staple_single_rater_reproduces_the_rater() -> None:
    mask = np.array([[[0, 1, 1], [0, 0, 1]]], dtype=np.uint8)
    result = cs.staple(mask)
    # W starts as the mask; p = q = 1; E: fg pixels b = 0 -> 1, bg pixels a = 0 -> 0.
    np.testing.assert_array_equal(result.labels, mask[0])
    np.testing.assert_allclose(result.raters.sensitivity, [1.0])
    np.testing.assert_allclose(result.raters.specificity, [1.0])


def test_staple_all_empty_masks_give_background_and_no_nan() -> None:
    result = cs.staple(np.zeros((2, 3, 3), dtype=np.uint8))
    # g = 0, W = 0; p's denominator is 0 -> p keeps its start value 1.0 (ITK: 0/0 = NaN);
    # q = 1; E: a = 0 -> W = 0.
    assert (result.labels == 0).all()
    assert (result.posterior[1] == 0).all()
    np.testing.assert_array_equal(result.raters.sensitivity, [1.0, 1.0])
    np.testing.assert_array_equal(result.raters.specificity, [1.0, 1.0])
    np.testing.assert_array_equal(result.raters.support[:, 1], [0.0, 0.0])
    assert not np.isnan(result.posterior).any()


def test_staple_foreground_value_picks_one_class() -> None:
    masks = np.array([[0, 2, 2, 1], [2, 2, 0, 1]], dtype=np.uint8)
    # Only class 2 is foreground; class 1 counts as background (ITK ForegroundValue).
    on_class = cs.staple(masks, foreground=2)
    on_binary = cs.staple((masks == 2).astype(np.uint8))
    np.testing.assert_array_equal(on_class.labels, on_binary.labels)
    np.testing.assert_allclose(on_class.posterior, on_binary.posterior)


def test_staple_rater_who_rated_nothing_changes_nothing() -> None:
    idle = np.full((1, 4), NOT_RATED, dtype=np.int16)
    with_idle = cs.staple(np.concatenate([NESTED.astype(np.int16), idle]))
    # The idle rater adds no vote, so prior, start and every sum are those of NESTED.
    plain = cs.staple(NESTED)
    np.testing.assert_allclose(with_idle.posterior, plain.posterior)
    np.testing.assert_allclose(with_idle.raters.sensitivity[:2], plain.raters.sensitivity)
    # Its rates rest on nothing: support 0, reported as 1.0 (no evidence of error).
    np.testing.assert_array_equal(with_idle.raters.support[2], [0.0, 0.0])
    assert with_idle.raters.sensitivity[2] == 1.0


# --- multi-class STAPLE -----------------------------------------------------------------


def test_staple_multiclass_vote_start_hand_worked() -> None:
    result = cs.staple_multiclass(DISSENT, max_iter=0)
    # Soft vote: pixels 0..2 one-hot; pixel3 [1/3, 0, 2/3]. One M-step (columns = truth):
    #   rater0 true0: said0 1 (pixel0), said2 1/3 (pixel3) -> [3/4, 0, 1/4]
    #   rater2 true0: said0 1 + 1/3 -> [1, 0, 0]; true2: said2 1, said0 2/3 -> [0.4, 0, 0.6]
    # Prior = vote frequencies [4/12, 3/12, 5/12]. Pixel3 votes (2, 2, 0):
    #   W0 = 1/3 * 1/4 * 1/4 * 1 = 1/48; W1 = 1/4 * 0 = 0; W2 = 5/12 * 1 * 1 * 0.4 = 8/48.
    np.testing.assert_allclose(result.posterior[:, 0, 3], [1 / 9, 0, 8 / 9])
    np.testing.assert_allclose(result.prior, [4 / 12, 3 / 12, 5 / 12])
    np.testing.assert_array_equal(result.labels, [[0, 1, 2, 2]])
    assert not result.converged


def test_staple_multiclass_converges_to_the_two_raters_who_agree() -> None:
    result = cs.staple_multiclass(DISSENT)
    # With x = P(pixel3 is 0): x_new ~ (x^2/3)/(5/24), so x -> 0 and pixel3 -> class 2.
    # Rater2 then said 0 on one of its two true-2 pixels: true-2 row -> [1/2, 0, 1/2];
    # rater0 never erred: identity.
    np.testing.assert_array_equal(result.labels, [[0, 1, 2, 2]])
    assert result.posterior[2, 0, 3] == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(result.raters.confusion[2, 2], [0.5, 0, 0.5], atol=1e-4)
    np.testing.assert_allclose(result.raters.confusion[0], np.eye(3), atol=1e-4)
    assert result.converged


def test_staple_multiclass_itk_start_hand_worked() -> None:
    result = cs.staple_multiclass(DISSENT, init="itk", max_iter=0)
    # ITK start: plain vote [0, 1, 2, 2]; rows (rater's label) normalised over the vote:
    #   rater0 said2 -> votes 2, 2 -> [0, 0, 1]; rater2 said0 -> votes 0, 2 -> [1/2, 0, 1/2].
    # Pixel3 (2, 2, 0): W0 = 1/3 * 0 = 0, W1 = 0, W2 = 5/12 * 1 * 1 * 1/2 -> [0, 0, 1].
    np.testing.assert_allclose(result.posterior[:, 0, 3], [0, 0, 1])
    np.testing.assert_allclose(result.posterior[:, 0, 0], [1, 0, 0])


@pytest.mark.parametrize("init", ["vote", "itk"])
def test_staple_multiclass_total_disagreement_is_undecided(init: str) -> None:
    masks = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    result = cs.staple_multiclass(masks, init=init)
    # vote start: every matrix entry 1/2 -> W equal for both classes -> undecided.
    # itk start: every vote ties, ITK files each tie under "said j+1, truth 0", leaving the
    # rows the raters use all zero -> W = 0 everywhere -> undecided.
    # Undecided label defaults to C = 2, one past the largest class id (ITK).
    np.testing.assert_array_equal(result.labels, [2, 2])
    np.testing.assert_allclose(result.posterior, [[0.5, 0.5], [0.5, 0.5]])
    relabelled = cs.staple_multiclass(masks, init=init, undecided=-2)
    np.testing.assert_array_equal(relabelled.labels, [-2, -2])


def test_staple_multiclass_initial_confusion_is_used() -> None:
    unsure = np.full((3, 3), 1 / 3)
    trusted = np.full((3, 3), 0.01) + np.eye(3) * 0.97  # rows [0.98, 0.01, 0.01] ...
    confusion = np.stack([unsure, unsure, trusted])
    result = cs.staple_multiclass(DISSENT, confusion=confusion, max_iter=0)
    # Pixel3 (2, 2, 0): W0 = 1/3 * 1/3 * 1/3 * 0.98, W1 = 1/4 * 1/9 * 0.01,
    # W2 = 5/12 * 1/9 * 0.01 -> W0 share = 0.98 / (0.98 + 0.01 * (3/4 + 5/4)) = 0.98.
    assert result.posterior[0, 0, 3] == pytest.approx(0.98)
    assert result.labels[0, 3] == 0


def test_staple_multiclass_single_rater_is_identity() -> None:
    mask = np.array([[0, 1, 2, 2, 1]], dtype=np.uint8)
    result = cs.staple_multiclass(mask)
    # Soft vote = the rater's one-hot; M-step -> identity; nothing moves at iteration 1.
    np.testing.assert_array_equal(result.labels, mask[0])
    np.testing.assert_allclose(result.raters.confusion[0], np.eye(3))
    assert result.iterations == 1


# --- Dawid-Skene ------------------------------------------------------------------------


def test_dawid_skene_first_iteration_hand_worked() -> None:
    items = DISSENT[:, 0, :]  # (R=3, N=4) item labels
    result = cs.dawid_skene(items, max_iter=1)
    # Start as crowd-kit: prior = mean soft vote = [(1 + 1/3)/4, 1/4, (1 + 2/3)/4]
    # = [1/3, 1/4, 5/12]; matrices from the soft vote (as in the multi-class STAPLE case,
    # zeros clipped to 1e-10). First E-step on item3: [1/48, ~0, 8/48] -> [1/9, 0, 8/9].
    np.testing.assert_allclose(result.posterior[:, 3], [1 / 9, 0, 8 / 9], atol=1e-8)
    np.testing.assert_array_equal(result.labels, [0, 1, 2, 2])
    # Prior after the iteration = mean posterior = [(1 + 1/9)/4, 1/4, (1 + 8/9)/4].
    np.testing.assert_allclose(result.prior, [10 / 36, 1 / 4, 17 / 36], atol=1e-8)


def test_dawid_skene_initial_confusion_is_used() -> None:
    unsure = np.full((3, 3), 1 / 3)
    trusted = np.full((3, 3), 0.01) + np.eye(3) * 0.97
    result = cs.dawid_skene(
        DISSENT[:, 0, :], confusion=np.stack([unsure, unsure, trusted]), max_iter=1
    )
    # Same arithmetic as the multi-class STAPLE case: item3 follows rater2, P(0) = 0.98.
    assert result.posterior[0, 3] == pytest.approx(0.98)
    assert result.labels[3] == 0


def test_dawid_skene_agreeing_raters_recover_the_labels() -> None:
    labels = np.array([[0, 1, 2, 1, 0]] * 3, dtype=np.uint8)
    result = cs.dawid_skene(labels)
    # Every item unanimous: posterior one-hot, each rater's matrix the identity.
    np.testing.assert_array_equal(result.labels, labels[0])
    np.testing.assert_allclose(result.posterior[labels[0], np.arange(5)], 1.0, atol=1e-8)
    np.testing.assert_allclose(result.raters.confusion, np.stack([np.eye(3)] * 3), atol=1e-8)


def test_dawid_skene_item_nobody_rated() -> None:
    labels = np.array([[0, 1, NOT_RATED], [0, 1, NOT_RATED]], dtype=np.int16)
    result = cs.dawid_skene(labels)
    # Item2 has no rating: label NOT_RATED, posterior = the prior (1/2, 1/2 here).
    assert result.labels[2] == NOT_RATED
    np.testing.assert_allclose(result.posterior[:, 2], result.prior)
    np.testing.assert_allclose(result.prior, [0.5, 0.5], atol=1e-8)


def test_dawid_skene_single_rater_is_that_rater() -> None:
    labels = np.array([[2, 0, 1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(cs.dawid_skene(labels).labels, labels[0])


# --- results and inputs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_raters", "n_classes"),
    [(3, 3), (12, 4), (40, 3)],  # codes: 4^3 dense bincount, 5^12 np.unique, 4^40 rows
)
def test_vote_patterns_are_the_same_whatever_the_encoding(n_raters: int, n_classes: int) -> None:
    rng = np.random.default_rng(n_raters)
    masks = rng.integers(0, n_classes, size=(n_raters, 30, 20)).astype(np.int16)
    masks[rng.random(masks.shape) < 0.1] = NOT_RATED
    result = cs.majority_vote(masks, n_classes=n_classes)
    # Reference: count each pixel's rated votes directly; ties to the lowest class id;
    # a pixel nobody rated is NOT_RATED with a uniform share.
    votes = np.stack([(masks == c).sum(axis=0) for c in range(n_classes)])
    total = votes.sum(axis=0)
    expected = np.where(total > 0, votes.argmax(axis=0), NOT_RATED)
    np.testing.assert_array_equal(result.labels, expected)
    share = np.where(total > 0, votes / np.maximum(total, 1), 1 / n_classes)
    np.testing.assert_allclose(result.posterior, share)
    assert result.patterns.counts.sum() == 30 * 20


def test_results_are_frozen() -> None:
    result = cs.majority_vote(THREE_RATERS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.method = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.raters.confusion = np.eye(3)  # type: ignore[misc]


@pytest.mark.parametrize("name", ["majority_vote", "staple", "staple_multiclass", "dawid_skene"])
def test_posterior_has_a_class_axis_and_sums_to_one(name: str) -> None:
    rng = np.random.default_rng(7)
    masks = rng.integers(0, 2, size=(3, 6, 5), dtype=np.uint8)
    result = cs.run_consensus(name, masks)
    assert result.posterior.shape == (2, 6, 5)
    assert result.labels.shape == (6, 5)
    np.testing.assert_allclose(result.posterior.sum(axis=0), 1.0)


def test_sensitivity_is_only_defined_for_two_classes() -> None:
    with pytest.raises(ValueError, match="2 classes"):
        _ = cs.majority_vote(THREE_RATERS).raters.sensitivity


def test_masks_must_be_integer_class_ids() -> None:
    with pytest.raises(ValueError, match="integer"):
        cs.majority_vote(np.zeros((2, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="n_classes"):
        cs.majority_vote(THREE_RATERS, n_classes=2)
