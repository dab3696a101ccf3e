"""Hand-made learning rows for page tests: rounds, training runs, model versions, scored tiles.

Pages read figures only, so versions point at a weights path that need not exist.
"""

from __future__ import annotations

import itertools

import numpy as np

from annotation.models import Project, Region
from learning.models import (
    CandidateScore,
    CandidateTile,
    ModelVersion,
    Proposal,
    Round,
    RoutingRecord,
    TrainingRun,
)

_numbers = itertools.count(1)


def make_round(project: Project, number: int = 0, state: str = "collecting", **extra) -> Round:
    return Round.objects.create(project=project, number=number, state=state, **extra)


def make_run(
    project: Project, round: Round | None = None, status: str = "running", **extra
) -> TrainingRun:
    return TrainingRun.objects.create(project=project, round=round, status=status, **extra)


def make_version(
    project: Project,
    number: int | None = None,
    class_ids: list[int | None] | None = None,
    round: Round | None = None,
    **extra,
) -> ModelVersion:
    """A finished training run and the version it registered."""
    run = make_run(project, round=round, status="finished")
    number = number if number is not None else next(_numbers)
    fields = {
        "weights_path": f"models/{project.pk}/v{number}.pt",
        "weights_sha256": "ab" * 32,
        "dataset_hash": f"{number:064x}",
        "class_ids": class_ids if class_ids is not None else [None],
        "target_mpp": project.target_mpp,
        "patch_size": 256,
    }
    fields.update(extra)
    return ModelVersion.objects.create(project=project, number=number, training_run=run, **fields)


def make_tile(project: Project, slide: object, x: int, y: int, side: int, **extra) -> CandidateTile:
    return CandidateTile.objects.create(
        project=project, slide=slide, x=x, y=y, width=side, height=side, **extra
    )


def score_tile(
    tile: CandidateTile,
    version: ModelVersion,
    prediction: np.ndarray,
    uncertainty: np.ndarray,
    entropy: float = 0.5,
    bald: float = 0.1,
) -> CandidateScore:
    """A score whose square maps are given as ``(m, m)`` uint8 arrays."""
    prediction = np.asarray(prediction, dtype=np.uint8)
    uncertainty = np.asarray(uncertainty, dtype=np.uint8)
    return CandidateScore.objects.create(
        tile=tile,
        model_version=version,
        entropy=entropy,
        bald=bald,
        class_pixels=np.bincount(prediction.ravel()).tolist(),
        embedding=np.zeros(4, dtype=np.float16).tobytes(),
        map_size=prediction.shape[0],
        prediction_map=prediction.tobytes(),
        uncertainty_map=uncertainty.tobytes(),
    )


def make_proposal(
    round: Round, version: ModelVersion, tile: CandidateTile, rank: int, score: float
) -> Proposal:
    region = Region.objects.create(
        project=round.project,
        slide=tile.slide,
        x=tile.x,
        y=tile.y,
        width=tile.width,
        height=tile.height,
        origin="proposed",
    )
    return Proposal.objects.create(
        round=round,
        model_version=version,
        tile=tile,
        region=region,
        strategy="bald",
        score=score,
        rank=rank,
    )


def make_routing(
    round: Round, version: ModelVersion, region: Region, route: str = "expert"
) -> RoutingRecord:
    return RoutingRecord.objects.create(
        round=round,
        model_version=version,
        region=region,
        route=route,
        score=0.8,
        contested=0.25,
        reason="contested 25% and uncertain",
    )
