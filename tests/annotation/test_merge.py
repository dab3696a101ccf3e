"""Merging a region's submissions (services called directly): runs, escalation, reliability."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from annotation.models import (
    AnnotatorReliability,
    ConsensusJob,
    ConsensusRun,
    Membership,
    Project,
    Region,
)
from annotation.selectors_consensus import accepted_regions, adjudication_queue
from annotation.services.assignments import assignment_next
from annotation.services.members import member_exclude
from annotation.services.merge import load_arrays, merge_region
from tests.annotation.merge_helpers import at_slide_resolution, region, submit
from tests.factories import add_member, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(campaign):
    at_slide_resolution(campaign["project"], campaign["slide"])
    Project.objects.filter(pk=campaign["project"].pk).update(consensus_method="majority_vote")
    campaign["project"].refresh_from_db()
    return campaign


def _three(setup, reg, squares):
    s = setup["students"]
    return [
        submit(
            reg, s[i], [sq] if sq else [], setup["tumour"], outcome="shapes" if sq else "nothing"
        )
        for i, sq in enumerate(squares)
    ]


def test_merge_stores_one_immutable_run_and_a_second_merge_is_a_noop(setup):
    reg = region(setup["project"], setup["slide"])
    subs = _three(setup, reg, [(1010, 1010, 40), (1010, 1010, 40), (1011, 1010, 40)])
    run = merge_region(region_id=reg.pk)
    again = merge_region(region_id=reg.pk)
    assert again.pk == run.pk and ConsensusRun.objects.filter(region=reg).count() == 1
    assert ConsensusJob.objects.get(region=reg).attempts == 1  # the no-op did not even claim
    assert run.inputs == [[s.pk, s.version, s.annotator_id, "shapes"] for s in subs]
    # The classes the answers use (stroma, unused here, gets no index).
    assert run.class_ids == [
        setup["project"].label_classes.get(is_background=True).pk,
        setup["tumour"].pk,
    ]
    assert (run.height, run.width) == (100, 100) and run.downsample == pytest.approx(1.0)
    arrays = load_arrays(run)
    assert arrays["labels"].shape == (100, 100)
    assert arrays["posterior"].shape == arrays["vote_share"].shape == (2, 100, 100)
    # Majority: the 40 x 40 square at (10, 10) of the region; its outline is that square.
    assert (arrays["labels"] == 1).sum() == 1600
    assert run.polygons == [
        {
            "label_class": setup["tumour"].pk,
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [1010.0, 1010.0],
                        [1010.0, 1050.0],
                        [1050.0, 1050.0],
                        [1050.0, 1010.0],
                        [1010.0, 1010.0],
                    ]
                ],
            },
        }
    ]
    path = Path(settings.MEDIA_ROOT) / run.arrays_path
    assert path.parent == Path(settings.MEDIA_ROOT) / "consensus" / str(reg.pk)
    assert path.name.startswith(run.inputs_hash)
    assert not list(path.parent.glob(".tmp-*"))
    with pytest.raises(ValueError, match="immutable"):
        run.save()


def test_escalation_on_hand_made_regions(setup):
    project, tumour = setup["project"], setup["tumour"]
    clear = region(project, setup["slide"], 1000, 1000)
    contested = region(project, setup["slide"], 1200, 1000)
    hopeless = region(project, setup["slide"], 1400, 1000)
    # Clear: A, B 40x40 at the same place, C shifted 1 px: Dice AB = 1, AC = BC =
    # 2*(39*40)/(1600+1600) = 0.975 -> mean 0.98333 >= 0.8. Contested pixels (2 of 3 = 0.667 <
    # 0.8): the column only A, B mark and the column only C marks: 2 * 40 = 80 of 10,000 = 0.008.
    _three(setup, clear, [(1010, 1010, 40), (1010, 1010, 40), (1011, 1010, 40)])
    # Contested: A, B, C 40x40 shifted 10 px each: Dice AB = BC = 2*(30*40)/3200 = 0.75,
    # AC = 2*(20*40)/3200 = 0.5 -> mean 0.6667 in [0.5, 0.8). Columns with 1 or 2 votes:
    # 10 + 10 + 10 + 10 = 40 of the 60 spanned, x 40 rows = 1600 px = 0.16.
    _three(setup, contested, [(1210, 1010, 40), (1220, 1010, 40), (1230, 1010, 40)])
    # Hopeless: A and B 30x30 apart, C "nothing": every pairwise Dice is 0 -> needs an expert.
    _three(setup, hopeless, [(1410, 1010, 30), (1450, 1050, 30), None])

    runs = {
        name: merge_region(region_id=r.pk)
        for name, r in [("clear", clear), ("contested", contested), ("hopeless", hopeless)]
    }
    assert runs["clear"].dice == pytest.approx((1 + 0.975 + 0.975) / 3)
    assert runs["clear"].contested_pixels == 80
    assert runs["clear"].contested_fraction == pytest.approx(0.008)
    assert runs["clear"].status == "accepted"
    assert runs["contested"].dice == pytest.approx((0.75 + 0.75 + 0.5) / 3)
    assert runs["contested"].contested_pixels == 1600
    assert runs["contested"].status == "needs_more"
    assert runs["hopeless"].dice == pytest.approx(0.0)
    assert runs["hopeless"].status == "needs_adjudication"
    assert runs["hopeless"].rater_scores[2]["outcome"] == "nothing"

    # needs_more raised the slot count by one: the fourth student now gets the contested region.
    contested.refresh_from_db()
    assert contested.extra_slots == 1
    clear.refresh_from_db()
    assert clear.extra_slots == 0
    fourth = assignment_next(project=project, user=setup["students"][3])
    assert fourth.region_id == contested.pk

    # Selectors: accepted answers with their contested mask; the expert queue.
    accepted = accepted_regions(project)
    assert [a.region.pk for a in accepted] == [clear.pk]
    assert accepted[0].contested.sum() == 80 and (accepted[0].labels == 1).sum() == 1600
    assert [r.region_id for r in adjudication_queue(project)] == [hopeless.pk]

    # The fourth annotator agrees with B: the merge of 4 asks again or decides, never repeats 3.
    submit(contested, setup["students"][3], [(1220, 1010, 40)], tumour)
    rerun = merge_region(region_id=contested.pk)
    assert rerun.pk != runs["contested"].pk and len(rerun.inputs) == 4


def test_adjudication_queue_ranks_by_disagreement_times_contested_area(setup):
    project = setup["project"]
    small = region(project, setup["slide"], 1000, 1000)
    big = region(project, setup["slide"], 1200, 1000)
    # Both have Dice 0; small contests 2 * 10x10 = 200 px, big 2 * 30x30 = 1800 px.
    _three(setup, small, [(1010, 1010, 10), (1050, 1050, 10), None])
    _three(setup, big, [(1210, 1010, 30), (1250, 1050, 30), None])
    for r in (small, big):
        merge_region(region_id=r.pk)
    queue = adjudication_queue(project)
    assert [r.region_id for r in queue] == [big.pk, small.pk]
    assert [r.contested_pixels for r in queue] == [1800, 200]


def test_excluding_an_annotator_queues_a_merge_and_the_new_run_leaves_them_out(
    setup, django_capture_on_commit_callbacks
):
    reg = region(setup["project"], setup["slide"])
    subs = _three(setup, reg, [(1010, 1010, 40), (1010, 1010, 40), (1050, 1050, 40)])
    first = merge_region(region_id=reg.pk)
    assert first.status != "accepted"
    outlier = setup["students"][2]
    membership = Membership.objects.get(project=setup["project"], user=outlier)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        member_exclude(membership=membership, by=setup["manager"], reason="random clicks")
    assert len(callbacks) == 1  # one merge queued for the one region they worked on
    second = merge_region(region_id=reg.pk)
    assert second.pk != first.pk
    assert [i[0] for i in second.inputs] == [subs[0].pk, subs[1].pk]
    assert second.status == "accepted" and second.dice == pytest.approx(1.0)
    # The excluded annotator's evidence from this region is gone from the running estimate.
    row = AnnotatorReliability.objects.get(
        project=setup["project"], annotator=outlier, source="staple"
    )
    assert row.n_regions == 0 and row.sensitivity is None


def test_submitting_the_kth_submission_queues_exactly_one_merge(
    setup, django_capture_on_commit_callbacks
):
    reg = region(setup["project"], setup["slide"])
    s = setup["students"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(reg, s[0], [(1010, 1010, 40)], setup["tumour"])
        submit(reg, s[1], [(1010, 1010, 40)], setup["tumour"])
    assert callbacks == []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(reg, s[2], outcome="cannot_assess")
    assert len(callbacks) == 1


def test_staple_reliability_ranks_annotators_and_carries_to_the_next_merge(setup):
    project, tumour = setup["project"], setup["tumour"]
    Project.objects.filter(pk=project.pk).update(consensus_method="staple", redundancy_k=5)
    project.refresh_from_db()
    raters = [*setup["students"], make_user("s4")]
    add_member(project, raters[4], "annotator")
    # Truth: a 40x40 square. Three draw it exactly (r2 3 px too big on each side: extra
    # background), r3 shrinks it by 3 px a side (sensitivity 34^2/40^2 = 0.72), r4 by 8
    # (24^2/40^2 = 0.36). The three exact outlines hold a 3-of-5 majority on the truth.
    drawn = [(0, 40), (0, 40), (-3, 46), (3, 34), (8, 24)]
    regions = []
    for n in range(2):
        reg = region(project, setup["slide"], 1000 + 200 * n, 1000)
        for user, (inset, side) in zip(raters, drawn, strict=True):
            base = 1000 + 200 * n + 20
            submit(reg, user, [(base + inset, 1020 + inset, side)], tumour)
        merge_region(region_id=reg.pk)
        regions.append(reg)
    rows = {
        r.annotator_id: r
        for r in AnnotatorReliability.objects.filter(project=project, source="staple")
    }
    sens = [rows[u.pk].sensitivity for u in raters]
    spec = [rows[u.pk].specificity for u in raters]
    assert all(r.n_regions == 2 for r in rows.values())
    assert sens[0] == pytest.approx(1.0, abs=1e-3) and sens[1] == pytest.approx(1.0, abs=1e-3)
    assert sens[2] >= sens[3] > sens[4]
    assert sens[3] == pytest.approx(0.7225, abs=0.02) and sens[4] == pytest.approx(0.36, abs=0.02)
    assert spec[2] < min(spec[0], spec[1], spec[3], spec[4])
    # Re-merging a region (the same inputs) neither adds a run nor counts its evidence twice.
    merge_region(region_id=regions[0].pk)
    assert AnnotatorReliability.objects.get(pk=rows[raters[4].pk].pk).n_regions == 2


def test_region_labels_are_merged_with_dawid_skene(setup):
    project = setup["project"]
    Project.objects.filter(pk=project.pk).update(region_labels=True)
    project.refresh_from_db()
    reg = region(project, setup["slide"])
    from annotation.models import Assignment, Submission

    for user, label in zip(setup["students"][:3], ["tumour", "tumour", "stroma"], strict=True):
        assignment = Assignment.objects.create(
            region=reg, annotator=user, expires_at="2999-01-01T00:00Z"
        )
        Submission.objects.create(
            region=reg,
            annotator=user,
            assignment=assignment,
            status="submitted",
            outcome="nothing",
            region_label=setup[label],
        )
    run = merge_region(region_id=reg.pk)
    assert run.region_label_id == setup["tumour"].pk
    assert run.region_label_posterior[str(setup["tumour"].pk)] > 0.5


def test_a_merge_of_a_gone_or_unsubmitted_region_does_nothing(setup):
    reg = region(setup["project"], setup["slide"])
    assert merge_region(region_id=reg.pk) is None
    assert merge_region(region_id=10**9) is None
    assert not ConsensusRun.objects.exists()
    assert Region.objects.filter(pk=reg.pk).exists()
    assert np.asarray([]).size == 0


def test_gold_regions_score_students_against_the_expert_apart_from_staple(setup):
    project, tumour, expert = setup["project"], setup["tumour"], setup["expert"]
    gold = Region.objects.create(
        project=project,
        slide=setup["slide"],
        x=1000,
        y=1000,
        width=100,
        height=100,
        origin="gold",
    )
    submit(gold, expert, [(1010, 1010, 40)], tumour)  # the reference: 1600 px
    good, sloppy = setup["students"][:2]
    submit(gold, good, [(1010, 1010, 40)], tumour)
    # 20x20 inside the reference (sensitivity 400/1600 = 0.25) plus a 10x10 false positive
    # outside it (specificity 1 - 100/8400).
    submit(gold, sloppy, [(1010, 1010, 20), (1070, 1070, 10)], tumour)
    assert merge_region(region_id=gold.pk) is None  # gold is scored, not merged
    assert not ConsensusRun.objects.filter(region=gold).exists()
    rows = {r.annotator_id: r for r in AnnotatorReliability.objects.filter(project=project)}
    assert {r.source for r in rows.values()} == {"gold"} and expert.pk not in rows
    assert rows[good.pk].sensitivity == pytest.approx(1.0)
    assert rows[sloppy.pk].sensitivity == pytest.approx(0.25)
    assert rows[sloppy.pk].specificity == pytest.approx(1 - 100 / 8400)
    merge_region(region_id=gold.pk)  # again: the region's evidence is replaced, not added
    assert AnnotatorReliability.objects.get(pk=rows[sloppy.pk].pk).n_regions == 1


def test_a_merge_allocates_per_class_present_and_pools_evidence_in_project_order(setup):
    """Audit finding 6: a project of many classes costs a region using two of them nothing,
    and evidence from regions that use different classes still pools class by class."""
    from annotation.models import LabelClass
    from annotation.services.merge import merge_inputs

    project, tumour = setup["project"], setup["tumour"]
    unused = [
        LabelClass.objects.create(project=project, name=f"unused-{n}", order=10 + n)
        for n in range(40)
    ]
    stroma = setup["stroma"]
    first = region(project, setup["slide"], 1000, 1000)
    _three(setup, first, [(1020, 1020, 40)] * 3)
    inputs = merge_inputs(region=first)
    assert inputs.class_ids == [inputs.project_class_ids[0], tumour.pk]
    assert len(inputs.project_class_ids) >= 2 + len(unused)
    run = merge_region(region_id=first.pk)
    arrays = load_arrays(run)
    assert arrays["posterior"].shape[0] == 2  # background + tumour, not one per project class
    # A second region drawn in stroma: its evidence lands in stroma's row of the project's
    # matrix, not in tumour's (which is compact index 1 in both regions).
    second = region(project, setup["slide"], 1200, 1000)
    s = setup["students"]
    for user in s:
        submit(second, user, [(1220, 1020, 40)], stroma)
    merge_region(region_id=second.pk)
    row = AnnotatorReliability.objects.get(project=project, annotator=s[0], source="staple")
    order = merge_inputs(region=second).project_class_ids
    pooled = np.asarray(row.confusion)
    assert pooled.shape == (len(order), len(order))
    t, st = order.index(tumour.pk), order.index(stroma.pk)
    assert pooled[t, t] == pytest.approx(1.0) and pooled[st, st] == pytest.approx(1.0)
    evidence = {k: np.asarray(v) for k, v in row.evidence.items()}
    assert evidence[str(first.pk)][t, t] > 0 and evidence[str(first.pk)][st, st] == 0
    assert evidence[str(second.pk)][st, st] > 0 and evidence[str(second.pk)][t, t] == 0
