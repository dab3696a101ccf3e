"""Consensus on real multi-rater data: BU-BIL Dataset 1 (images B04, B05), scored against gold.

Object pixels are black and the PNG modes are mixed, so each mask is ``convert("L") < 128``.
The gold standard equals expert Person2's masks, so Person2 never takes part in a consensus
scored against it. Run with ``-s`` to see the report (Dice of every method and worker).

Reference (SimpleITK on this data): majority vote of the 7 crowd workers 0.859 against a
median worker of 0.827 on B04, 0.757 against 0.724 on B05; STAPLE 0.825 and 0.730. STAPLE is
not always better than the vote, and these tests do not claim it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotation import agreement, consensus
from tests.datapaths import shared_data_dir

IMAGES = ("B04", "B05")
# Dice against gold measured with SimpleITK (see the module docstring).
REFERENCE = {
    "B04": {"majority_vote": 0.859, "median_worker": 0.827, "staple": 0.825},
    "B05": {"majority_vote": 0.757, "median_worker": 0.724, "staple": 0.730},
}


def _dataset() -> Path:
    return shared_data_dir() / "multirater" / "BU-BIL_Dataset1"


def _mask(path: Path) -> np.ndarray:
    """``(H, W)`` uint8, 1 on object (black) pixels."""
    with Image.open(path) as image:
        return (np.asarray(image.convert("L")) < 128).astype(np.uint8)


def _dice(labels: np.ndarray, gold: np.ndarray) -> float:
    return float(agreement.rater_vs_consensus(labels[None], gold, n_classes=2).dice[0, 1])


def _crowd(image: str) -> tuple[list[str], np.ndarray]:
    folders = sorted((_dataset() / "CrowdsourcedAnnotations").glob("mturk_annotation1-*"))
    return [f.name for f in folders], np.stack([_mask(f / f"seg_{image}.png") for f in folders])


def _experts_without_person2(image: str) -> tuple[list[str], np.ndarray]:
    folders = sorted(
        f for f in (_dataset() / "ExpertsAnnotations").iterdir() if "Person2" not in f.name
    )
    return [f.name for f in folders], np.stack([_mask(f / f"seg_{image}.png") for f in folders])


def _report(title: str, names: list[str], masks: np.ndarray, gold: np.ndarray) -> float:
    """Print every method's and rater's Dice against gold; return the median rater's."""
    vote = consensus.majority_vote(masks)
    staple = consensus.staple(masks)
    # Weights from agreement alone (no gold): each rater's mean Dice with the others.
    pairwise = agreement.pairwise_overlap(masks, n_classes=2).dice[1]
    peer_weight = (pairwise.sum(axis=1) - 1.0) / (len(names) - 1)
    weighted = consensus.weighted_vote(masks, weights=peer_weight)
    rater_dice = [_dice(m, gold) for m in masks]
    print(f"\n{title}: Dice against gold")
    print(f"  majority vote    {_dice(vote.labels, gold):.3f}")
    print(f"  STAPLE           {_dice(staple.labels, gold):.3f}")
    print(f"  weighted vote    {_dice(weighted.labels, gold):.3f}  (peer-agreement weights)")
    print(f"  median rater     {np.median(rater_dice):.3f}")
    for name, dice, sens, spec in zip(
        names, rater_dice, staple.raters.sensitivity, staple.raters.specificity, strict=True
    ):
        print(f"    {name:<22} {dice:.3f}  STAPLE p={sens:.3f} q={spec:.4f}")
    return float(np.median(rater_dice))


@pytest.mark.parametrize("image", IMAGES)
def test_crowd_majority_vote_beats_the_median_worker(image: str) -> None:
    names, masks = _crowd(image)
    assert len(names) == 7
    gold = _mask(_dataset() / "GoldStandard" / f"seg_{image}.png")

    median_worker = _report(f"{image}, 7 crowd workers", names, masks, gold)
    vote_dice = _dice(consensus.majority_vote(masks).labels, gold)
    staple_dice = _dice(consensus.staple(masks).labels, gold)

    assert vote_dice > median_worker
    reference = REFERENCE[image]
    assert vote_dice == pytest.approx(reference["majority_vote"], abs=1e-3)
    assert median_worker == pytest.approx(reference["median_worker"], abs=1e-3)
    assert staple_dice == pytest.approx(reference["staple"], abs=1e-3)


@pytest.mark.parametrize("image", IMAGES)
def test_expert_majority_vote_beats_the_median_expert(image: str) -> None:
    names, masks = _experts_without_person2(image)
    assert len(names) == 8 and not any("Person2" in n for n in names)
    gold = _mask(_dataset() / "GoldStandard" / f"seg_{image}.png")

    median_expert = _report(f"{image}, 8 expert masks (Person2 left out)", names, masks, gold)

    assert _dice(consensus.majority_vote(masks).labels, gold) > median_expert


@pytest.mark.parametrize("image", IMAGES)
def test_gold_standard_is_person2_which_is_why_person2_is_left_out(image: str) -> None:
    gold = _mask(_dataset() / "GoldStandard" / f"seg_{image}.png")
    person2 = _mask(_dataset() / "ExpertsAnnotations" / "Person2_Amira" / f"seg_{image}.png")
    assert _dice(person2, gold) == 1.0
