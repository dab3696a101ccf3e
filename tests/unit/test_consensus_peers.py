"""annotation.consensus against its peers: SimpleITK's STAPLE filters and crowd-kit.

SimpleITK and crowd-kit are test-only dependencies (requirements-dev.txt). Each case is small
(64x64 to 96x96 pixels, a few hundred items) so the whole file runs in a few seconds.

Starting as SimpleITK starts means: binary STAPLE without initial rates (ITK seeds the
posterior with each pixel's foreground-vote share, estimates the prior the same way, and stops
when no rate moves by more than 1e-7); multi-label STAPLE with ``init="itk"`` (ITK's voting
start, quirks included) and ITK's threshold, which SimpleITK passes as float32(1e-5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from crowdkit.aggregation import DawidSkene, MajorityVote, SegmentationMajorityVote

from annotation import consensus as cs
from annotation.consensus import NOT_RATED

# crowd-kit 1.4.2 uses pandas idioms pandas 3 deprecates; its warnings are not ours.
pytestmark = pytest.mark.filterwarnings("ignore:::crowdkit")

ITK_MULTILABEL_TOL = float(np.float32(1e-5))  # SimpleITK's float default, seen as a double


def _random_masks(
    rng: np.random.Generator, n_raters: int, n_classes: int, fg: float, size: int = 64
) -> np.ndarray:
    """Pixel-independent truth with share ``fg`` of non-zero classes; raters flip 2-30 %."""
    truth = (rng.random((size, size)) < fg) * rng.integers(1, n_classes, (size, size))
    error = rng.uniform(0.02, 0.3, (n_raters, 1, 1))
    noise = rng.integers(0, n_classes, (n_raters, size, size))
    masks = np.where(rng.random((n_raters, size, size)) < error, noise, truth)
    masks[0, 0, 0] = n_classes - 1  # ITK takes C from the largest label present
    return masks.astype(np.uint8)


def _structured_masks(
    rng: np.random.Generator, n_raters: int, n_classes: int, fg: float, size: int = 96
) -> np.ndarray:
    """Discs ("cells") covering about ``fg`` of the image; raters move, resize, miss, add."""
    mean_r = size / 12
    count = max(1, int(fg * size * size / (np.pi * mean_r**2)))
    centres = rng.uniform(0, size, (count, 2))
    radii = rng.uniform(0.5, 1.5, count) * mean_r
    classes = rng.integers(1, n_classes, count)
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((n_raters, size, size), dtype=np.uint8)
    for r in range(n_raters):
        keep = rng.random(count) > 0.1
        shift = centres + rng.normal(0, 1.5, (count, 2))
        radius = radii + rng.normal(0, 1.5, count)
        labels = np.where(rng.random(count) < 0.1, rng.integers(1, n_classes, count), classes)
        for (cy, cx), rad, label, kept in zip(shift, radius, labels, keep, strict=True):
            if kept:
                masks[r][(yy - cy) ** 2 + (xx - cx) ** 2 <= rad * rad] = label
    masks[0, 0, 0] = n_classes - 1
    return masks


# (raters, classes, foreground share, kind, seed): R = 2..9, C = 2..5, 1 % to 60 %.
CASES = [
    (2, 2, 0.01, "random", 1),
    (3, 3, 0.30, "random", 2),
    (4, 4, 0.60, "random", 3),
    (5, 5, 0.10, "random", 4),
    (6, 2, 0.60, "random", 5),
    (7, 3, 0.05, "random", 6),
    (8, 4, 0.30, "random", 7),
    (9, 5, 0.01, "random", 8),
    (2, 3, 0.30, "structured", 9),
    (3, 2, 0.05, "structured", 10),
    (5, 4, 0.60, "structured", 11),
    (7, 5, 0.20, "structured", 12),
    (9, 2, 0.40, "structured", 13),
]


def _masks(n_raters: int, n_classes: int, fg: float, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    make = _random_masks if kind == "random" else _structured_masks
    return make(rng, n_raters, n_classes, fg)


def _images(masks: np.ndarray) -> list[sitk.Image]:
    return [sitk.GetImageFromArray(np.ascontiguousarray(m)) for m in masks]


@pytest.mark.parametrize(("n_raters", "n_classes", "fg", "kind", "seed"), CASES)
def test_binary_staple_matches_simpleitk(
    n_raters: int, n_classes: int, fg: float, kind: str, seed: int
) -> None:
    masks = _masks(n_raters, n_classes, fg, kind, seed)
    peer = sitk.STAPLEImageFilter()
    peer.SetForegroundValue(1)  # class 1 is foreground, every other class background
    posterior = sitk.GetArrayFromImage(peer.Execute(_images(masks)))

    ours = cs.staple(masks, foreground=1)

    # Both thresholded the same way: foreground where the posterior is > 0.5.
    assert int(((posterior > 0.5) != (ours.labels == 1)).sum()) == 0
    np.testing.assert_allclose(ours.posterior[1], posterior, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.raters.sensitivity, peer.GetSensitivity(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.raters.specificity, peer.GetSpecificity(), rtol=0, atol=1e-6)
    # ITK reports the 0-based index of its last iteration; the same stopping rule fired.
    assert ours.iterations == peer.GetElapsedIterations() + 1


def _multilabel_peer(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    peer = sitk.MultiLabelSTAPLEImageFilter()
    labels = sitk.GetArrayFromImage(peer.Execute(_images(masks)))
    n_classes = int(masks.max()) + 1
    # ITK's matrices are (C + 1) x C: [said, true], plus a "reject" row.
    matrices = np.stack(
        [
            np.reshape(peer.GetConfusionMatrix(r), (n_classes + 1, n_classes))
            for r in range(masks.shape[0])
        ]
    )
    return labels, matrices


@pytest.mark.parametrize(("n_raters", "n_classes", "fg", "kind", "seed"), CASES)
def test_multilabel_staple_matches_simpleitk(
    n_raters: int, n_classes: int, fg: float, kind: str, seed: int
) -> None:
    masks = _masks(n_raters, n_classes, fg, kind, seed)
    peer_labels, peer_matrices = _multilabel_peer(masks)

    ours = cs.staple_multiclass(masks, init="itk", tol=ITK_MULTILABEL_TOL)

    assert int((ours.labels != peer_labels).sum()) == 0  # undecided pixels included (C)
    ours_said_true = ours.raters.confusion.transpose(0, 2, 1)  # to ITK's [said, true]
    evidence = ours.raters.support[:, None, :] > 0  # columns (true classes) that occurred
    np.testing.assert_allclose(
        np.where(evidence, ours_said_true, 0.0),
        np.where(evidence, peer_matrices[:, :n_classes], 0.0),
        rtol=0,
        atol=1e-6,
    )
    np.testing.assert_array_equal(peer_matrices[:, n_classes], 0.0)  # ITK's reject row


def test_multilabel_staple_undecided_pixels_match_simpleitk() -> None:
    # Two raters over three classes: ties in ITK's voting start (which ITK files under the
    # wrong row) leave some pixels with no winning class: undecided, labelled C = 3.
    masks = _structured_masks(np.random.default_rng(2), 2, 3, 0.1)
    peer_labels, _ = _multilabel_peer(masks)
    ours = cs.staple_multiclass(masks, init="itk", tol=ITK_MULTILABEL_TOL)
    assert int((peer_labels == 3).sum()) > 0
    np.testing.assert_array_equal(ours.labels, peer_labels)


# --- crowd-kit --------------------------------------------------------------------------


def _long_format(labels: np.ndarray) -> pd.DataFrame:
    """crowd-kit's (task, worker, label) rows from ``(R, N)`` labels, unrated left out."""
    workers, tasks = np.nonzero(labels >= 0)
    return pd.DataFrame({"task": tasks, "worker": workers, "label": labels[workers, tasks]})


def _item_labels(
    seed: int, n_raters: int, n_classes: int, n_items: int, missing: float
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    accuracy = rng.uniform(0.45, 0.95, (n_raters, 1))
    noise = rng.integers(0, n_classes, (n_raters, n_items))
    labels = np.where(rng.random((n_raters, n_items)) < accuracy, truth, noise)
    labels[rng.random((n_raters, n_items)) < missing] = NOT_RATED
    labels[0, labels[0] < 0] = truth[labels[0] < 0]  # every item keeps one rating
    labels[:, :n_classes] = np.arange(n_classes)  # every class occurs
    return labels.astype(np.int16)


def _proba_matrix(frame: pd.DataFrame, n_items: int, n_classes: int) -> np.ndarray:
    """crowd-kit's task x label frame as an (N, C) array in our class order."""
    out = np.zeros((n_items, n_classes))
    for label in frame.columns:
        out[frame.index.to_numpy(), int(label)] = frame[label].to_numpy()
    return out


ITEM_CASES = [(3, 2, 200, 0.0, 31), (5, 3, 300, 0.2, 32), (7, 4, 300, 0.3, 33)]


@pytest.mark.parametrize(("n_raters", "n_classes", "n_items", "missing", "seed"), ITEM_CASES)
def test_majority_vote_matches_crowdkit(
    n_raters: int, n_classes: int, n_items: int, missing: float, seed: int
) -> None:
    labels = _item_labels(seed, n_raters, n_classes, n_items, missing)
    peer = MajorityVote().fit(_long_format(labels))
    ours = cs.majority_vote(labels, n_classes=n_classes)

    shares = _proba_matrix(peer.probas_, n_items, n_classes)
    np.testing.assert_allclose(ours.posterior.T, shares, rtol=0, atol=1e-12)
    peer_labels = peer.labels_.sort_index().to_numpy().astype(int)
    top = shares.max(axis=1, keepdims=True)
    tied = (shares == top).sum(axis=1) > 1
    # Clear winners: the same label. Ties: crowd-kit takes the first tied column in its
    # frame's column order (order of appearance); we take the lowest tied class id.
    np.testing.assert_array_equal(ours.labels[~tied], peer_labels[~tied])
    assert all(shares[i, peer_labels[i]] == top[i, 0] for i in np.flatnonzero(tied))
    np.testing.assert_array_equal(ours.labels[tied], (shares[tied] == top[tied]).argmax(1))


def test_weighted_vote_matches_crowdkit_skills() -> None:
    labels = _item_labels(41, 5, 3, 300, 0.2)
    weights = np.random.default_rng(42).uniform(0.1, 2.0, 5)
    peer = MajorityVote().fit(_long_format(labels), skills=pd.Series(weights))
    ours = cs.weighted_vote(labels, weights=weights)

    np.testing.assert_allclose(
        ours.posterior.T, _proba_matrix(peer.probas_, 300, 3), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(ours.labels, peer.labels_.sort_index().to_numpy())


def test_segmentation_majority_vote_matches_crowdkit_with_ties_to_foreground() -> None:
    rng = np.random.default_rng(51)
    masks = (rng.random((4, 32, 32)) < 0.5).astype(np.uint8)  # four raters: 2-2 ties
    frame = pd.DataFrame(
        {"task": 0, "worker": range(4), "segmentation": [m.astype(bool) for m in masks]}
    )
    peer = SegmentationMajorityVote().fit_predict(frame).iloc[0]
    # crowd-kit sends a 2-2 tie to foreground; ours does with tie=1, else to background.
    np.testing.assert_array_equal(cs.majority_vote(masks, tie=1).labels == 1, peer)
    two_two = masks.sum(axis=0) == 2
    assert two_two.any()
    np.testing.assert_array_equal(cs.majority_vote(masks).labels == 1, peer & ~two_two)


@pytest.mark.parametrize("n_iter", [1, 10, 50])
@pytest.mark.parametrize(("n_raters", "n_classes", "n_items", "missing", "seed"), ITEM_CASES)
def test_dawid_skene_matches_crowdkit(
    n_raters: int, n_classes: int, n_items: int, missing: float, seed: int, n_iter: int
) -> None:
    labels = _item_labels(seed, n_raters, n_classes, n_items, missing)
    # Same start (crowd-kit's MajorityVote shares) and the same number of EM iterations:
    # crowd-kit stops on its ELBO, we on parameter change, so both are told to run n_iter.
    peer = DawidSkene(n_iter=n_iter, tol=-np.inf).fit(_long_format(labels))
    ours = cs.dawid_skene(labels, n_classes=n_classes, max_iter=n_iter, tol=0.0)

    assert ours.iterations == n_iter == len(peer.loss_history_)
    np.testing.assert_allclose(
        ours.posterior.T, _proba_matrix(peer.probas_, n_items, n_classes), rtol=0, atol=1e-6
    )
    np.testing.assert_array_equal(ours.labels, peer.labels_.sort_index().to_numpy())
    prior = np.array([peer.priors_[label] for label in range(n_classes)])
    np.testing.assert_allclose(ours.prior, prior, rtol=0, atol=1e-6)
    peer_confusion = np.zeros((n_raters, n_classes, n_classes))  # [worker, true, said]
    for (worker, said), row in peer.errors_.iterrows():
        peer_confusion[int(worker), [int(t) for t in row.index], int(said)] = row.to_numpy()
    np.testing.assert_allclose(ours.raters.confusion, peer_confusion, rtol=0, atol=1e-6)
