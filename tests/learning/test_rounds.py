"""One active-learning round through the services, step by step, as the worker runs them."""

from __future__ import annotations

import pytest
import shapely
from django.test import override_settings
from shapely.geometry import box as shapely_box

from annotation.models import Assignment, ConsensusStatus, Region, RegionOrigin
from annotation.selectors_consensus import adjudication_queue, latest_runs
from learning.models import (
    CandidateScore,
    CandidateTile,
    ModelVersion,
    Proposal,
    Round,
    RoundState,
    RoutingRecord,
    RunStatus,
    TrainingRun,
)
from learning.services.proposals import proposals_make
from learning.services.rounds import (
    RoundError,
    round_check,
    round_current,
    round_quota,
    round_start,
)
from learning.services.scoring import scoring_chunk
from learning.services.training_runs import ChunkOutcome, training_run_chunk
from tests.learning.rounds_helpers import label_truthfully, make_campaign, outline, submit_shapes

pytestmark = pytest.mark.django_db


def run_training(run: TrainingRun) -> list[str]:
    outcomes = []
    for _ in range(50):
        run.refresh_from_db()
        result = training_run_chunk(run_id=run.pk, chunk=run.chunks)
        outcomes.append(result.outcome)
        if result.outcome != ChunkOutcome.CONTINUED:
            return outcomes
    raise AssertionError("training did not finish in 50 chunks")


def run_scoring(round_id: int) -> None:
    for _ in range(100):
        if scoring_chunk(round_id=round_id) != "continued":
            return
    raise AssertionError("scoring did not finish")


@pytest.fixture
def campaign(db):
    return make_campaign()


def test_quota_is_counted_from_accepted_regions_of_the_round(campaign):
    project, regions = campaign["project"], campaign["regions"]
    assert len(regions) == 6
    current = round_current(project=project)
    assert (current.number, current.state) == (0, RoundState.COLLECTING)
    # round_quota 0.5 of 6 regions: 3 accepted needed.
    label_truthfully(campaign, regions[:2])
    assert round_quota(round=current) == type(round_quota(round=current))(2, 3, 6)
    assert round_check(project_id=project.pk) is None
    assert TrainingRun.objects.count() == 0
    label_truthfully(campaign, regions[2:3])
    started = round_check(project_id=project.pk)
    assert started is not None and started.state == RoundState.TRAINING
    assert started.trigger == "quota"
    # A second check (a repeated message) starts nothing more.
    assert round_check(project_id=project.pk) is None
    assert TrainingRun.objects.filter(project=project).count() == 1


def test_paused_campaign_starts_no_round(campaign):
    project = campaign["project"]
    label_truthfully(campaign, campaign["regions"])
    type(project).objects.filter(pk=project.pk).update(state="paused")
    assert round_check(project_id=project.pk) is None
    project.refresh_from_db()
    with pytest.raises(RoundError, match="not open"):
        round_start(round=round_current(project=project), user=campaign["manager"])
    assert round_current(project=project).state == RoundState.COLLECTING


@pytest.mark.smoke
@override_settings(LEARNING_CHUNK_SECONDS=1, LEARNING_EPOCHS=4)
def test_full_round_trains_scores_and_proposes(campaign):
    project, regions = campaign["project"], campaign["regions"]
    label_truthfully(campaign, regions)
    assert all(r.status == ConsensusStatus.ACCEPTED for r in latest_runs(project))
    current = round_start(round=round_current(project=project), user=campaign["manager"])
    assert current.state == RoundState.TRAINING and current.trigger == "manager"
    run = TrainingRun.objects.get(round=current)
    # Validation is by slide: no slide has regions in both sets.
    slide_of = dict(Region.objects.values_list("pk", "slide_id"))
    train_slides = {slide_of[r] for r in run.dataset["train_regions"]}
    val_slides = {slide_of[r] for r in run.dataset["val_regions"]}
    assert train_slides and val_slides and not train_slides & val_slides

    outcomes = run_training(run)
    assert outcomes[-1] == ChunkOutcome.FINISHED
    run.refresh_from_db()
    assert run.status == RunStatus.FINISHED
    assert [h["epoch"] for h in run.history] == list(range(1, len(run.history) + 1))
    version = ModelVersion.objects.get(training_run=run)
    assert version.number == 1 and version.dataset_hash == run.dataset_hash
    assert sorted(version.consensus_runs) == sorted(r.pk for r in latest_runs(project))
    assert len(version.metrics["dice"]) == 2 and 0 <= version.metrics["ece"] <= 1
    assert version.class_ids == [None, campaign["gland"].pk]
    # A second delivery of the finished chunk is stale and changes nothing.
    assert training_run_chunk(run_id=run.pk, chunk=0).outcome == ChunkOutcome.STALE
    assert ModelVersion.objects.count() == 1

    current.refresh_from_db()
    assert current.state == RoundState.SCORING and current.model_version == version
    run_scoring(current.pk)
    tiles = CandidateTile.objects.filter(project=project)
    assert tiles.count() > 0
    assert CandidateScore.objects.filter(model_version=version).count() == tiles.count()
    # Every region is a tile of its own, so its uncertainty can route it.
    assert set(tiles.exclude(region=None).values_list("region_id", flat=True)) == {
        r.pk for r in regions
    }
    score = CandidateScore.objects.filter(model_version=version).first()
    assert len(score.uncertainty_map) == score.map_size**2
    current.refresh_from_db()
    assert current.state == RoundState.PROPOSING
    assert scoring_chunk(round_id=current.pk) == "stale"

    next_round = proposals_make(round_id=current.pk)
    assert proposals_make(round_id=current.pk) is None  # a second delivery: nothing more
    current.refresh_from_db()
    assert current.state == RoundState.DONE and set(current.stage_seconds) >= {
        "collecting", "training", "scoring", "proposing"
    }  # fmt: skip
    assert (next_round.number, next_round.state) == (1, RoundState.COLLECTING)
    proposed = list(Region.objects.filter(project=project, origin=RegionOrigin.PROPOSED))
    assert len(proposed) == project.round_size
    assert all(r.round_number == 1 for r in proposed)
    assert Proposal.objects.filter(round=current, model_version=version).count() == len(proposed)
    # Labelled area is never proposed again, and the proposals do not overlap each other.
    earlier = {s: shapely.union_all([shapely_box(*r.bounds) for r in regions if r.slide_id == s])
               for s in {r.slide_id for r in regions}}  # fmt: skip
    for region in proposed:
        assert not shapely_box(*region.bounds).intersection(earlier[region.slide_id]).area
    for i, a in enumerate(proposed):
        for b in proposed[i + 1 :]:
            if a.slide_id == b.slide_id:
                assert not shapely_box(*a.bounds).intersection(shapely_box(*b.bounds)).area
    # Each new region went to k = 2 distinct annotators up front.
    for region in proposed:
        holders = set(Assignment.objects.filter(region=region).values_list("annotator", flat=True))
        assert holders == {s.pk for s in campaign["students"]}


@override_settings(LEARNING_EPOCHS=2)
def test_unchanged_training_data_skips_training(campaign):
    project = campaign["project"]
    label_truthfully(campaign, campaign["regions"])
    current = round_start(round=round_current(project=project), user=campaign["manager"])
    run_training(TrainingRun.objects.get(round=current))
    run_scoring(current.pk)
    following = proposals_make(round_id=current.pk)
    # Nobody labelled the proposed regions: the training set is the same.
    again = round_start(round=following, user=campaign["manager"])
    skipped = TrainingRun.objects.get(round=again)
    assert skipped.status == RunStatus.SKIPPED
    assert again.state == RoundState.SCORING
    assert again.model_version == ModelVersion.objects.get()
    assert ModelVersion.objects.count() == 1
    # Scoring with the same version skips the tiles it already scored. The proposed regions
    # are the very tiles that were scored (now linked to their region): nothing new to score.
    old = dict(CandidateScore.objects.values_list("tile_id", "created_at"))
    run_scoring(again.pk)
    assert dict(CandidateScore.objects.values_list("tile_id", "created_at")) == old
    proposed = set(Region.objects.filter(origin=RegionOrigin.PROPOSED).values_list("pk", flat=True))
    linked = CandidateTile.objects.filter(pk__in=old, region__in=proposed)
    assert set(linked.values_list("region_id", flat=True)) == proposed
    again.refresh_from_db()
    assert again.state == RoundState.PROPOSING


@pytest.mark.parametrize(
    ("k_max", "route"), [(3, "more_annotators"), (2, "expert")], ids=["below-k-max", "at-k-max"]
)
@override_settings(LEARNING_EPOCHS=2)
def test_contested_uncertain_region_is_routed(campaign, k_max, route):
    project, regions = campaign["project"], campaign["regions"]
    # Accept on Dice alone, so a region with a disagreeing outline is accepted, contested.
    type(project).objects.filter(pk=project.pk).update(
        max_contested_fraction=1.0, redundancy_k_max=k_max
    )
    project.refresh_from_db()
    label_truthfully(campaign, regions[1:])
    contested = regions[0]
    truth = outline(contested, campaign["truths"][contested.slide_id])
    assert truth, "the seeded region should hold glands"
    eroded = [shapely.geometry.mapping(shapely.geometry.shape(g).buffer(-12)) for g in truth]
    eroded = [g for g in eroded if g["type"] == "Polygon" and g["coordinates"]]
    first, second = campaign["students"]
    submit_shapes(contested, first, truth, campaign["gland"])
    submit_shapes(contested, second, eroded, campaign["gland"])
    from annotation.services.merge import merge_region

    run = merge_region(region_id=contested.pk)
    # Accepted (Dice >= 0.8), but at most half-way from the bar to perfect agreement.
    assert run.status == ConsensusStatus.ACCEPTED and 0.8 <= run.dice <= 0.9
    current = round_start(round=round_current(project=project), user=campaign["manager"])
    run_training(TrainingRun.objects.get(round=current))
    run_scoring(current.pk)
    # The model is least sure about exactly this region.
    tile = CandidateTile.objects.get(region=contested)
    CandidateScore.objects.filter(tile=tile).update(entropy=10.0, bald=10.0)
    proposals_make(round_id=current.pk)
    record = RoutingRecord.objects.get(round=current)
    assert record.region_id == contested.pk and record.route == route
    contested.refresh_from_db()
    queued = contested.pk in {r.region_id for r in adjudication_queue(project)}
    if route == "more_annotators":
        # k = 2 worked on it, k_max = 3: one more slot, handed out at once; no expert yet.
        assert contested.extra_slots == 1 and not contested.expert_requested and not queued
        assert (
            Assignment.objects.filter(region=contested).count() == 3
            or len(campaign["students"]) == 2
        )  # only two students exist: the slot waits for a third annotator
    else:
        assert contested.extra_slots == 0 and contested.expert_requested and queued
    # Routing and proposals share the budget.
    assert Proposal.objects.filter(round=current).count() == project.round_size - 1


def test_manager_cannot_start_a_round_with_nothing_accepted(campaign):
    with pytest.raises(RoundError, match="nothing to train on"):
        round_start(round=round_current(project=campaign["project"]), user=campaign["manager"])
    assert not Round.objects.exclude(state=RoundState.COLLECTING).exists()
