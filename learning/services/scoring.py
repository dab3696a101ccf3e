"""Scoring: candidate tiles over every slide's tissue, scored per model version in chunks.

A tile is a region-sized square (the project's ``region_size`` at ``target_mpp``), so the tile
a strategy picks becomes the next round's region as it is. Existing regions are tiles too (with
``region`` set), so that their uncertainty can route a contested one back. Scores are stored per
(tile, version) as scalars plus small arrays (embedding, uncertainty and prediction maps); a
tile already scored for the version is skipped, so a second delivery adds nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image

from annotation.models import Project, Region
from annotation.services.regions import RegionError, region_side_level0
from learning.models import CandidateScore, CandidateTile, ModelVersion, Round, RoundState
from learning.networks import UNet, load_weights
from learning.services import rounds as round_services
from learning.training import resolve_device
from learning.uncertainty import score_patches
from slides.crops import render_image
from slides.models import Slide, SlideStatus
from slides.tiling import Box

logger = logging.getLogger(__name__)

SCORE_TASK = "learning.score_chunk"
PROPOSE_TASK = "learning.propose_round"


def _tissue_share(mask: np.ndarray, scale: float, box: tuple[int, int, int, int]) -> float:
    """Share of tissue pixels of the thumbnail mask under a level-0 box."""
    x0, y0, x1, y1 = (int(v / scale) for v in box)
    window = mask[y0 : max(y0 + 1, y1), x0 : max(x0 + 1, x1)]
    return float(window.mean()) if window.size else 0.0


def candidates_ensure(*, project: Project) -> int:
    """Create the tiles of every ready slide (grid over tissue) and of every region; returns the
    number of tiles the project has."""
    tiles: list[CandidateTile] = []
    slides = project.slides.filter(status=SlideStatus.READY).order_by("pk")
    for slide in slides:
        if not slide.mpp or not slide.tissue_mask or not Path(slide.tissue_mask).exists():
            continue
        try:
            side = region_side_level0(project, slide)
        except RegionError:
            continue
        mask = np.asarray(Image.open(slide.tissue_mask).convert("L")) > 127
        scale = slide.width / mask.shape[1]
        for y in range(0, slide.height - side + 1, side):
            for x in range(0, slide.width - side + 1, side):
                share = _tissue_share(mask, scale, (x, y, x + side, y + side))
                if share >= settings.LEARNING_CANDIDATE_MIN_TISSUE:
                    tiles.append(
                        CandidateTile(
                            project=project,
                            slide=slide,
                            x=x,
                            y=y,
                            width=side,
                            height=side,
                            tissue_fraction=round(share, 4),
                        )  # fmt: skip
                    )
    CandidateTile.objects.bulk_create(tiles, ignore_conflicts=True)
    regions = Region.objects.filter(project=project, slide__status=SlideStatus.READY)
    for region in regions.exclude(pk__in=CandidateTile.objects.filter(region__isnull=False)
                                  .values("region_id")):  # fmt: skip
        box = {"x": region.x, "y": region.y, "width": region.width, "height": region.height}
        tile, _ = CandidateTile.objects.get_or_create(
            project=project, slide_id=region.slide_id, **box, defaults={"region": region}
        )
        if tile.region_id is None:
            CandidateTile.objects.filter(pk=tile.pk, region__isnull=True).update(region=region)
    return CandidateTile.objects.filter(project=project).count()


@lru_cache(maxsize=2)
def _model(path: str, sha256: str, device: str) -> UNet:
    """Weights by path and hash (a version's file never changes), kept for the next chunk."""
    model, _ = load_weights(path, map_location=device)
    return model


def _tile_images(tiles: list[CandidateTile], project: Project) -> np.ndarray:
    side = project.region_size
    out = np.empty((len(tiles), side, side, 3), dtype=np.uint8)
    slides: dict[int, Slide] = {}
    for i, tile in enumerate(tiles):
        slide = slides.setdefault(tile.slide_id, tile.slide)
        downsample = project.target_mpp / slide.mpp
        box = Box(tile.x, tile.y, tile.width, tile.height)
        image = render_image(slide.path, slide.level_downsamples, box, downsample)
        if image.size != (side, side):
            image = image.resize((side, side), Image.Resampling.BILINEAR)
        out[i] = np.asarray(image)
    return out


def _unscored(project: Project, version: ModelVersion):  # noqa: ANN202 - a queryset
    return (
        CandidateTile.objects.filter(project=project)
        .exclude(scores__model_version=version)
        .select_related("slide")
        .order_by("pk")
    )


def score_tiles(*, version: ModelVersion, tiles: list[CandidateTile], seed: int) -> int:
    """Score ``tiles`` with the version (MC dropout) and store one row per tile; returns how
    many rows were new."""
    if not tiles:
        return 0
    project = version.project
    device = resolve_device(settings.LEARNING_DEVICE)
    path = str(Path(settings.MEDIA_ROOT) / version.weights_path)
    model = _model(path, version.weights_sha256, str(device))
    images = _tile_images(tiles, project)
    with torch.random.fork_rng(devices=[]):
        scores = score_patches(
            model,
            images,
            samples=settings.LEARNING_MC_SAMPLES,
            batch_size=8,
            seed=seed,
            map_size=settings.LEARNING_MAP_SIZE,
        )
    k = model.config.num_classes
    max_entropy = math.log(k)
    rows = [
        CandidateScore(
            tile=tile,
            model_version=version,
            entropy=float(scores["entropy"][i]),
            bald=float(scores["bald"][i]),
            class_pixels=[int(v) for v in scores["class_pixels"][i]],
            embedding=scores["embedding"][i].astype(np.float16).tobytes(),
            map_size=settings.LEARNING_MAP_SIZE,
            uncertainty_map=np.clip(scores["entropy_map"][i] / max_entropy * 255, 0, 255)
            .round()
            .astype(np.uint8)
            .tobytes(),
            prediction_map=scores["prediction_map"][i].astype(np.uint8).tobytes(),
        )
        for i, tile in enumerate(tiles)
    ]
    before = CandidateScore.objects.filter(model_version=version).count()
    CandidateScore.objects.bulk_create(rows, ignore_conflicts=True)
    return CandidateScore.objects.filter(model_version=version).count() - before


def scoring_chunk(*, round_id: int) -> str:
    """Score the next chunk of unscored tiles; queue the next chunk or move on to proposing."""
    round = round_services.round_claim_step(
        round_id=round_id, state=RoundState.SCORING, max_attempts=settings.CELERY_TASK_MAX_ATTEMPTS
    )
    if round is None:
        return "stale"
    project, version = round.project, round.model_version
    if version is None:
        round_services.round_fail(
            round_id=round_id, state=RoundState.SCORING, reason="no model version to score with"
        )
        return "failed"
    # Tiles are made once per step (a mask read per slide); later chunks take the stored total.
    total = round.progress.get("total") or candidates_ensure(project=project)
    todo = list(_unscored(project, version)[: settings.LEARNING_SCORE_CHUNK_TILES])
    score_tiles(version=version, tiles=todo, seed=settings.LEARNING_SEED + round.number)
    scored = CandidateScore.objects.filter(model_version=version, tile__project=project).count()
    round_services.round_set_progress(
        round_id=round_id,
        state=RoundState.SCORING,
        progress={"scored": scored, "total": total, "model_version": version.pk},
        step_done=True,
    )
    if scored < total:
        transaction.on_commit(lambda: current_app.send_task(SCORE_TASK, args=[round_id]))
        return "continued"
    with transaction.atomic():
        moved = round_services.round_transition(
            round_id=round_id, from_state=RoundState.SCORING, to_state=RoundState.PROPOSING
        )
        if moved is not None:
            round_services.round_enqueue_step(round=moved)
    return "finished"


def scoring_requeue_stalled(*, older_than_seconds: float) -> int:
    """Periodic safety net: queue the step of rounds in scoring or proposing whose last
    delivery started long ago (or never) and did not fail."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    rounds = (
        Round.objects.filter(state__in=[RoundState.SCORING, RoundState.PROPOSING], failed_reason="")
        .exclude(step_started_at__gt=cutoff)
        .exclude(advanced_at__gt=cutoff)
    )
    count = 0
    for round in rounds:
        round_services.round_enqueue_step(round=round)
        count += 1
    return count
