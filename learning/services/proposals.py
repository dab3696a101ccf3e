"""Proposing the next round: the project's strategy turns a version's scores into new regions
(with their assignments) and routing decisions, in one commit with the round's move."""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.models import Adjudication, ConsensusStatus, Project, Region, RegionOrigin
from annotation.selectors_consensus import latest_runs
from annotation.services.regions import region_create
from annotation.services.routing import (
    assignments_prefill,
    region_request_expert,
    region_request_more_annotators,
)
from learning.models import (
    CandidateScore,
    CandidateTile,
    ModelVersion,
    Proposal,
    Round,
    RoundState,
    RoutingRecord,
)
from learning.services import rounds as round_services
from learning.strategies import (
    Candidate,
    Route,
    RoutingDecision,
    RoutingPolicy,
    get_strategy,
)
from learning.strategies import Proposal as StrategyProposal

logger = logging.getLogger(__name__)


def routing_policy(project: Project) -> RoutingPolicy:
    """Contested: at least half-way from perfect agreement down to the acceptance bar (see
    :func:`_region_disagreement`). To an expert once the region had k_max annotators;
    otherwise back for one more."""
    return RoutingPolicy(contested_threshold=0.5, k_max=project.redundancy_k_max)


def _region_disagreement(project: Project) -> dict[int, tuple[float, int]]:
    """Region id -> (disagreement in [0, 1], annotators) for accepted, undecided regions.

    Disagreement is ``(1 - Dice) / (1 - accept_dice)``: 0 for perfect agreement, 1 at the bar.
    Regions the merge did not accept are already handled by it (more annotators, or the
    experts' queue), and an expert's decision settles a region.
    """
    decided = set(
        Adjudication.objects.filter(region__project=project).values_list("region_id", flat=True)
    )
    room = max(1e-6, 1.0 - project.accept_dice)
    out = {}
    for run in latest_runs(project):
        if run.region_id in decided or run.status != ConsensusStatus.ACCEPTED:
            continue
        out[run.region_id] = (min(1.0, float(1.0 - run.dice) / room), len(run.inputs))
    return out


def candidates_for(version_id: int, project: Project) -> list[Candidate]:
    """The version's scored tiles as strategy candidates (region tiles carry disagreement)."""
    disagreement = _region_disagreement(project)
    candidates = []
    rows = CandidateScore.objects.filter(model_version_id=version_id).select_related("tile")
    for score in rows.order_by("tile_id"):
        tile = score.tile
        contested, annotators = disagreement.get(tile.region_id, (0.0, 0))
        candidates.append(
            Candidate(
                id=tile.pk,
                slide_id=tile.slide_id,
                box=tile.box,
                score=score.entropy,
                scores={"entropy": score.entropy, "bald": score.bald},
                features=np.frombuffer(score.embedding, dtype=np.float16).astype(np.float32),
                contested=contested,
                annotators=annotators,
                class_areas={str(i): float(v) for i, v in enumerate(score.class_pixels)},
            )
        )
    return candidates


def labelled_area(project: Project) -> dict[int, list[tuple[int, int, int, int]]]:
    """Every region's box per slide: labelled, being labelled or proposed; never proposed again."""
    area: dict[int, list[tuple[int, int, int, int]]] = {}
    for region in Region.objects.filter(project=project).only(
        "slide_id", "x", "y", "width", "height"
    ):
        area.setdefault(region.slide_id, []).append(region.bounds)
    return area


def proposals_make(*, round_id: int) -> Round | None:
    """proposing -> done, and the next round (collecting) with the proposed regions."""
    claimed = round_services.round_claim_step(
        round_id=round_id,
        state=RoundState.PROPOSING,
        max_attempts=settings.CELERY_TASK_MAX_ATTEMPTS,
    )
    if claimed is None:
        return None
    project, version = claimed.project, claimed.model_version
    strategy = get_strategy(project.strategy, routing=routing_policy(project))
    candidates = candidates_for(version.pk, project)
    rng = np.random.default_rng([settings.LEARNING_SEED, project.pk, claimed.number])
    with transaction.atomic():
        done = round_services.round_transition(
            round_id=round_id,
            from_state=RoundState.PROPOSING,
            to_state=RoundState.DONE,
            finished_at=timezone.now(),
        )
        if done is None:
            return None  # a parallel delivery proposed already
        selection = strategy.select(candidates, labelled_area(project), project.round_size, rng)
        next_round = Round.objects.create(project=project, number=done.number + 1)
        regions = _create_regions(done, next_round, version, selection.proposals)
        routed_back = _route(done, version, selection.routing)
        assignments = assignments_prefill(project=project, regions=[*regions, *routed_back])
    logger.info(
        "round %s of project %s: %d regions proposed (%d assignments), %d routed",
        done.number, project.pk, len(regions), len(assignments), len(selection.routing),
    )  # fmt: skip
    return next_round


def _create_regions(
    done: Round, next_round: Round, version: ModelVersion, proposals: list[StrategyProposal]
) -> list[Region]:
    tiles = CandidateTile.objects.in_bulk([p.candidate_id for p in proposals])
    regions = []
    for proposal in proposals:
        tile = tiles[proposal.candidate_id]
        region = region_create(
            project=done.project,
            slide=tile.slide,
            x=tile.x,
            y=tile.y,
            width=tile.width,
            height=tile.height,
            origin=RegionOrigin.PROPOSED,
            created_by=None,
            round_number=next_round.number,
            learning_ref=f"model v{version.number}, {proposal.strategy} rank {proposal.rank}",
        )
        Proposal.objects.create(
            round=done,
            model_version=version,
            tile=tile,
            region=region,
            strategy=proposal.strategy,
            score=proposal.score,
            rank=proposal.rank,
        )
        regions.append(region)
    return regions


def _route(done: Round, version: ModelVersion, decisions: list[RoutingDecision]) -> list[Region]:
    """Apply the routing decisions; returns the regions sent back for more annotators."""
    more: list[Region] = []
    tiles = CandidateTile.objects.select_related("region", "region__project").in_bulk(
        [d.candidate_id for d in decisions]
    )
    for decision in decisions:
        region = tiles[decision.candidate_id].region
        if region is None:
            continue  # only existing regions can be contested
        if decision.route == Route.EXPERT:
            region_request_expert(region=region, reason=decision.reason)
        elif region_request_more_annotators(region=region, reason=decision.reason):
            region.refresh_from_db(fields=["extra_slots"])
            more.append(region)
        RoutingRecord.objects.create(
            round=done,
            model_version=version,
            region=region,
            route=str(decision.route),
            score=decision.score,
            contested=decision.contested,
            reason=decision.reason,
        )
    return more
