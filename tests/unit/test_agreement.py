"""Hand-worked cases for annotation.agreement: every expectation is derived in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from annotation import agreement as ag
from annotation.consensus import NOT_RATED

# rater0: 1 1 0     rater1: 1 0 0
#         0 0 0             1 0 0
TWO_RATERS = np.array([[[1, 1, 0], [0, 0, 0]], [[1, 0, 0], [1, 0, 0]]], dtype=np.uint8)


# --- pairwise Dice and IoU --------------------------------------------------------------


def test_pairwise_dice_and_iou_hand_worked() -> None:
    overlap = ag.pairwise_overlap(TWO_RATERS, n_classes=3)
    # class1: rater0 {(0,0), (0,1)}, rater1 {(0,0), (1,0)}: 1 shared, 2 + 2 marked
    #   -> Dice 2*1/4 = 1/2, IoU 1/3.
    assert overlap.dice[1, 0, 1] == pytest.approx(0.5)
    assert overlap.iou[1, 0, 1] == pytest.approx(1 / 3)
    # class0: 4 and 4 pixels, shared (0,2), (1,1), (1,2) = 3 -> Dice 6/8, IoU 3/5.
    assert overlap.dice[0, 0, 1] == pytest.approx(0.75)
    assert overlap.iou[0, 0, 1] == pytest.approx(0.6)
    # class2: neither rater marks it: full agreement by definition, resting on 0 pixels.
    assert overlap.dice[2, 0, 1] == 1.0 and overlap.iou[2, 0, 1] == 1.0
    assert overlap.union[2, 0, 1] == 0 and overlap.union[1, 0, 1] == 3
    # Symmetric, and every rater agrees with itself.
    np.testing.assert_array_equal(overlap.dice, overlap.dice.transpose(0, 2, 1))
    np.testing.assert_array_equal(overlap.dice[:, [0, 1], [0, 1]], 1.0)


def test_pairwise_overlap_compares_only_pixels_both_rated() -> None:
    masks = TWO_RATERS.astype(np.int16)
    masks[1, 0, 1] = NOT_RATED
    overlap = ag.pairwise_overlap(masks)
    # Pixel (0,1) leaves the comparison. class1: rater0 {(0,0)}, rater1 {(0,0), (1,0)}:
    # 1 shared, 1 + 2 marked -> Dice 2/3, IoU 1/2.
    assert overlap.dice[1, 0, 1] == pytest.approx(2 / 3)
    assert overlap.iou[1, 0, 1] == pytest.approx(0.5)


def test_both_raters_empty_agree_fully_and_one_empty_disagrees() -> None:
    both_empty = np.zeros((2, 4, 4), dtype=np.uint8)
    overlap = ag.pairwise_overlap(both_empty, n_classes=2)
    assert overlap.dice[1, 0, 1] == 1.0 and overlap.iou[1, 0, 1] == 1.0
    one_marks = both_empty.copy()
    one_marks[0, 2, 2] = 1
    overlap = ag.pairwise_overlap(one_marks)
    # class1: 0 shared of 1 + 0 marked -> Dice 0, IoU 0.
    assert overlap.dice[1, 0, 1] == 0.0 and overlap.iou[1, 0, 1] == 0.0
    assert not np.isnan(overlap.dice).any()


def test_mean_pairwise_averages_distinct_pairs() -> None:
    masks = np.stack([TWO_RATERS[0], TWO_RATERS[1], TWO_RATERS[0]])
    overlap = ag.pairwise_overlap(masks)
    # class1 pairs: (0,1) 1/2, (0,2) 1 (same mask), (1,2) 1/2 -> mean 2/3.
    assert ag.mean_pairwise(overlap.dice)[1] == pytest.approx(2 / 3)
    # One rater: no pair, nobody disagrees.
    np.testing.assert_array_equal(ag.mean_pairwise(np.ones((2, 1, 1))), [1.0, 1.0])


# --- each rater against the consensus ---------------------------------------------------


def test_rater_vs_consensus_hand_worked() -> None:
    consensus = np.array([[1, 1, 0], [1, 0, 0]])
    result = ag.rater_vs_consensus(TWO_RATERS, consensus)
    # class1: consensus {(0,0), (0,1), (1,0)}. rater0 {(0,0), (0,1)}: 2 shared, 2 + 3
    # -> Dice 4/5, IoU 2/3; rater1 {(0,0), (1,0)}: the same figures.
    np.testing.assert_allclose(result.dice[:, 1], [0.8, 0.8])
    np.testing.assert_allclose(result.iou[:, 1], [2 / 3, 2 / 3])


def test_rater_vs_consensus_leaves_out_undecided_pixels() -> None:
    consensus = np.array([[1, 1, 0], [2, 0, 0]])  # 2 = undecided for a 2-class problem
    result = ag.rater_vs_consensus(TWO_RATERS, consensus, n_classes=2)
    # Pixel (1,0) leaves. class1: consensus {(0,0), (0,1)}; rater0 the same -> Dice 1;
    # rater1 {(0,0)}: 1 shared, 1 + 2 -> Dice 2/3.
    np.testing.assert_allclose(result.dice[:, 1], [1.0, 2 / 3])


def test_rater_vs_consensus_shape_must_match() -> None:
    with pytest.raises(ValueError, match="shape"):
        ag.rater_vs_consensus(TWO_RATERS, np.zeros((3, 2)))


# --- Fleiss' kappa ----------------------------------------------------------------------


def test_fleiss_kappa_tiny_hand_worked() -> None:
    labels = np.array([[0, 0], [0, 0], [0, 1]])  # (R=3, N=2): items (0,0,0) and (0,0,1)
    # P1 = 1, P2 = (2*1 + 1*0)/(3*2) = 1/3 -> P = 2/3; shares 5/6, 1/6 -> Pe = 26/36;
    # kappa = (24/36 - 26/36)/(10/36) = -0.2.
    assert ag.fleiss_kappa(labels) == pytest.approx(-0.2)


def test_fleiss_kappa_reproduces_fleiss_1971_example() -> None:
    # Fleiss (1971) worked example: 10 subjects, 14 raters, 5 categories; kappa = 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    labels = np.stack([np.repeat(np.arange(5), row) for row in table], axis=1)  # (14, 10)
    assert ag.fleiss_kappa(labels) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_with_missing_ratings() -> None:
    labels = np.array([[0, 0, 1], [0, 1, NOT_RATED], [NOT_RATED, 1, NOT_RATED]])
    # Items: (0, 0) n=2, (0, 1, 1) n=3, (1) n=1 dropped.
    # P1 = 1, P2 = (0 + 2*1)/(3*2) = 1/3 -> P = 2/3; shares over the 5 kept ratings:
    # 3/5, 2/5 -> Pe = 13/25; kappa = (2/3 - 13/25)/(12/25) = 11/36.
    assert ag.fleiss_kappa(labels) == pytest.approx(11 / 36)


def test_fleiss_kappa_single_category_and_no_pairs() -> None:
    # One category throughout: chance agreement 1 makes the formula 0/0; defined as 1.0.
    assert ag.fleiss_kappa(np.zeros((3, 5), dtype=np.uint8)) == 1.0
    # No item has two ratings: nothing to compare, NaN.
    assert math.isnan(ag.fleiss_kappa(np.array([[0, NOT_RATED], [NOT_RATED, 1]])))


# --- Krippendorff's alpha ---------------------------------------------------------------


def test_krippendorff_alpha_tiny_hand_worked() -> None:
    labels = np.array([[0, 0], [0, 0], [0, 1]])
    # Coincidences: unit (0,0,0): o00 += 3*2/2 = 3; unit (0,0,1): o00 += 2*1/2 = 1,
    # o01 = o10 = 2*1/2 = 1. n0 = 5, n1 = 1, n = 6;
    # alpha = 1 - (n - 1) * 2 / (2 * 5 * 1) = 0.
    assert ag.krippendorff_alpha_nominal(labels) == pytest.approx(0.0)


def test_krippendorff_alpha_with_missing_ratings() -> None:
    labels = np.array([[0, 0, 1], [0, 1, NOT_RATED], [NOT_RATED, 1, NOT_RATED]])
    # Unit (0, 0): o00 += 2. Unit (0, 1, 1): o01 = o10 = 1*2/2 = 1, o11 += 2*1/2 = 1.
    # Unit (1) is not pairable. n0 = 3, n1 = 2, n = 5; alpha = 1 - 4 * 2/(2*3*2) = 1/3.
    assert ag.krippendorff_alpha_nominal(labels) == pytest.approx(1 / 3)


def test_krippendorff_alpha_reproduces_krippendorff_2011_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example:
    # 4 observers, 12 units, missing values; alpha = 0.743.
    rows = [
        "1 2 3 3 2 1 4 1 2 . . .",
        "1 2 3 3 2 2 4 1 2 5 . 3",
        ". 3 3 3 2 3 4 2 2 5 1 .",
        "1 2 3 3 2 4 4 1 2 5 1 .",
    ]
    labels = np.array([[NOT_RATED if v == "." else int(v) for v in r.split()] for r in rows])
    assert ag.krippendorff_alpha_nominal(labels) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_single_category_and_no_pairs() -> None:
    assert ag.krippendorff_alpha_nominal(np.ones((2, 4), dtype=np.uint8)) == 1.0
    assert math.isnan(ag.krippendorff_alpha_nominal(np.array([[2, NOT_RATED]])))


# --- boundary F1 ------------------------------------------------------------------------


def _square(rows: slice, cols: slice, shape: tuple[int, int] = (5, 6)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def test_boundary_f1_hand_worked() -> None:
    a = _square(slice(1, 4), slice(1, 4))  # 3x3 square, boundary = its 8-pixel ring
    b = _square(slice(1, 4), slice(2, 5))  # the same square one column to the right
    # Rings share (1,2), (1,3), (3,2), (3,3): 4 of 8 each way -> P = R = 1/2 -> F1 1/2.
    assert ag.boundary_f1(a, b, tolerance=0) == pytest.approx(0.5)
    # Every ring pixel lies within 1 pixel of the other ring -> F1 1.
    assert ag.boundary_f1(a, b, tolerance=1) == pytest.approx(1.0)


def test_boundary_f1_tolerance_is_euclidean() -> None:
    a = _square(slice(2, 3), slice(2, 3))  # single pixels, diagonal neighbours:
    b = _square(slice(3, 4), slice(3, 4))  # distance sqrt(2) = 1.414
    assert ag.boundary_f1(a, b, tolerance=1) == 0.0
    assert ag.boundary_f1(a, b, tolerance=1.5) == 1.0


def test_boundary_f1_image_edge_is_not_a_boundary() -> None:
    a = _square(slice(0, 4), slice(0, 3), shape=(4, 6))  # left half
    b = _square(slice(0, 4), slice(0, 4), shape=(4, 6))  # one column wider
    # Boundaries are only the inner columns (2 for a, 3 for b): no shared pixel at
    # tolerance 0 -> F1 0. Were the image edge a boundary, column 0 would match.
    assert ag.boundary_f1(a, b, tolerance=0) == 0.0
    assert ag.boundary_f1(a, b, tolerance=1) == 1.0


def test_boundary_f1_empty_cases() -> None:
    empty = np.zeros((4, 4), dtype=bool)
    full = np.ones((4, 4), dtype=bool)
    some = _square(slice(1, 3), slice(1, 3), shape=(4, 4))
    assert ag.boundary_f1(empty, empty) == 1.0  # nothing marked by either: agree
    assert ag.boundary_f1(full, full) == 1.0  # no outline on either, same masks
    assert ag.boundary_f1(full, empty) == 0.0  # no outline on either, opposite masks
    assert ag.boundary_f1(empty, some) == 0.0  # one outline against none


def test_boundary_f1_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        ag.boundary_f1(np.zeros((3, 3)), np.zeros((3, 4)))
