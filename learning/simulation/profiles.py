"""Simulation scales (``--ci`` ... ``--full``) and seeded simulated people (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

KINDS = ("careful", "careless", "adversarial")


@dataclass(frozen=True)
class Scale:
    """How big a campaign is: slides, rounds, crowd, training knobs for the worker."""

    name: str
    slides: int
    slide_size: int  # level-0 px (square), at slide_mpp
    slide_mpp: float
    target_mpp: float
    region_size: int  # px at target_mpp
    regions_per_slide: int  # round 0 seeds
    round_size: int  # regions proposed per later round
    rounds: int  # rounds annotated (round 0 included)
    students: int
    careless: int
    adversarial: int
    experts: int
    k: int
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    heldout_tiles: int  # held-out ground-truth tiles per slide for the model's Dice
    learning_env: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CPU_SMALL = {
    "LEARNING_PATCH_SIZE": "64",
    "LEARNING_EPOCHS": "3",
    "LEARNING_BATCH_SIZE": "8",
    "LEARNING_BASE_WIDTH": "8",
    "LEARNING_DEPTH": "2",
    "LEARNING_PATIENCE": "3",
    "LEARNING_MC_SAMPLES": "4",
    "LEARNING_SCORE_CHUNK_TILES": "256",
    "LEARNING_DEVICE": "cpu",
}

SCALES: dict[str, Scale] = {
    "ci": Scale(
        name="ci",
        slides=1,
        slide_size=4096,
        slide_mpp=0.5,
        target_mpp=2.0,
        region_size=96,
        regions_per_slide=12,
        round_size=6,
        rounds=2,
        students=6,
        careless=1,
        adversarial=1,
        experts=1,
        k=3,
        strategies=("bald",),
        seeds=(7,),
        heldout_tiles=4,
        learning_env={**_CPU_SMALL, "LEARNING_EPOCHS": "2"},
    ),
    "quick": Scale(
        name="quick",
        slides=2,
        slide_size=4096,
        slide_mpp=0.5,
        target_mpp=2.0,
        region_size=128,
        regions_per_slide=6,
        round_size=6,
        rounds=4,
        students=8,
        careless=2,
        adversarial=1,
        experts=1,
        k=3,
        strategies=("bald", "random"),
        seeds=(7,),
        heldout_tiles=16,
        learning_env={**_CPU_SMALL, "LEARNING_EPOCHS": "6"},
    ),
    "full": Scale(
        name="full",
        slides=4,
        slide_size=16384,
        slide_mpp=0.5,
        target_mpp=1.0,
        region_size=256,
        regions_per_slide=8,
        round_size=16,
        rounds=6,
        students=20,
        careless=4,
        adversarial=2,
        experts=2,
        k=3,
        strategies=("random", "entropy", "bald", "diversity"),
        seeds=(7, 8, 9),
        heldout_tiles=32,
        learning_env={
            "LEARNING_PATCH_SIZE": "128",
            "LEARNING_EPOCHS": "30",
            "LEARNING_BATCH_SIZE": "16",
            "LEARNING_BASE_WIDTH": "16",
            "LEARNING_DEPTH": "3",
            "LEARNING_MC_SAMPLES": "8",
            "LEARNING_SCORE_CHUNK_TILES": "64",
            "LEARNING_DEVICE": "auto",
        },
    ),
}
# The quick campaign's scale, with every strategy and three seeds.
SCALES["standard"] = replace(
    SCALES["quick"],
    name="standard",
    strategies=("random", "entropy", "bald", "diversity"),
    seeds=(7, 8, 9),
)
SCALES = {name: SCALES[name] for name in ("ci", "quick", "standard", "full")}


def scale_with(base: Scale, **overrides: Any) -> Scale:
    """``base`` with the command-line flags that were given (None means not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if "strategies" in given:
        given["strategies"] = tuple(given["strategies"])
    if "seeds" in given:
        given["seeds"] = tuple(given["seeds"])
    scale = replace(base, **given)
    if scale.careless + scale.adversarial >= scale.students:
        raise ValueError("at least one student must be careful")
    return scale


@dataclass(frozen=True)
class Person:
    """One simulated person: how they draw (see ``drawing.draw_shapes``)."""

    username: str
    role: str  # "student" or "expert"
    kind: str  # careful, careless, adversarial (experts: careful)
    sensitivity: dict[str, float]  # per class: P(draw an object that is there)
    false_positive: dict[str, float]  # per class: P(a spurious blob per region) = 1 - specificity
    jitter: float  # boundary noise, in level-0 px (std of buffer and vertex noise)
    overdraw: float  # mean outward buffer, level-0 px (a sloppy hand colours outside the lines)
    miss_small: float  # extra P(miss) for objects smaller than ``small_area``
    small_area: float  # level-0 px^2
    wrong_class: float  # P(a drawn object gets another class)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_people(
    classes: list[str], scale: Scale, seed: int, prefix: str = "sim"
) -> tuple[list[Person], list[Person]]:
    """Seeded students (careful, then careless, then adversarial) and experts.

    Jitter is in level-0 px and scales with the working resolution, so a careful student is
    off by about one working pixel and a careless one by several.
    """
    rng = np.random.default_rng(seed)
    px = scale.target_mpp / scale.slide_mpp  # level-0 px per working px
    small = (12.0 / scale.slide_mpp) ** 2  # objects under ~12 um across count as small
    kinds = (
        ["careful"] * (scale.students - scale.careless - scale.adversarial)
        + ["careless"] * scale.careless
        + ["adversarial"] * scale.adversarial
    )
    students = []
    for i, kind in enumerate(kinds, start=1):
        if kind == "careful":
            sens = {c: float(rng.uniform(0.88, 0.98)) for c in classes}
            fp = {c: float(rng.uniform(0.0, 0.1)) for c in classes}
            jitter, miss_small, wrong = rng.uniform(0.5, 1.5) * px, 0.15, 0.03
            overdraw = 0.0
        elif kind == "careless":
            sens = {c: float(rng.uniform(0.45, 0.65)) for c in classes}
            fp = {c: float(rng.uniform(0.5, 0.8)) for c in classes}
            jitter, miss_small, wrong = rng.uniform(3.0, 5.0) * px, 0.5, 0.15
            overdraw = 4.0 * px
        else:  # adversarial: random blobs with wrong labels
            sens = {c: float(rng.uniform(0.1, 0.3)) for c in classes}
            fp = {c: 1.0 for c in classes}
            jitter, miss_small, wrong = 6.0 * px, 0.8, 0.8
            overdraw = 0.0
        students.append(
            Person(
                username=f"{prefix}-student{i:02d}",
                role="student",
                kind=kind,
                sensitivity=sens,
                false_positive=fp,
                jitter=float(jitter),
                overdraw=float(overdraw),
                miss_small=miss_small,
                small_area=small,
                wrong_class=wrong,
            )
        )
    experts = [
        Person(
            username=f"{prefix}-expert{i:02d}",
            role="expert",
            kind="careful",
            sensitivity={c: 0.99 for c in classes},
            false_positive={c: 0.0 for c in classes},
            jitter=0.3 * px,
            overdraw=0.0,
            miss_small=0.02,
            small_area=small,
            wrong_class=0.0,
        )
        for i in range(1, scale.experts + 1)
    ]
    return students, experts
