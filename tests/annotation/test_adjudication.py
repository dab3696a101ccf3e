"""Expert adjudication (services called directly): decisions, audit, re-scoring, re-merges."""

from __future__ import annotations

import pytest

from annotation.models import Adjudication, AnnotatorReliability, Project, Region
from annotation.selectors_consensus import accepted_regions, adjudication_queue
from annotation.services.adjudication import (
    AdjudicationError,
    adjudication_current,
    adjudication_decide,
)
from annotation.services.merge import merge_region
from tests.annotation.conftest import square
from tests.annotation.merge_helpers import at_slide_resolution, region, submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def hopeless(campaign):
    """A region nobody agrees on: A and B 30x30 squares apart, C "nothing" -> an expert."""
    at_slide_resolution(campaign["project"], campaign["slide"])
    Project.objects.filter(pk=campaign["project"].pk).update(consensus_method="majority_vote")
    campaign["project"].refresh_from_db()
    reg = region(campaign["project"], campaign["slide"], 1400, 1000)
    a, b, c, _ = campaign["students"]
    submit(reg, a, [(1410, 1010, 30)], campaign["tumour"])
    submit(reg, b, [(1450, 1050, 30)], campaign["tumour"])
    submit(reg, c, outcome="nothing")
    run = merge_region(region_id=reg.pk)
    assert run.status == "needs_adjudication"
    return {**campaign, "region": reg, "run": run}


def _gold(project: Project, user: object) -> AnnotatorReliability:
    return AnnotatorReliability.objects.get(project=project, annotator=user, source="gold")


def test_an_edit_supersedes_the_consensus_and_rescores_the_annotators(hopeless):
    project, reg, tumour = hopeless["project"], hopeless["region"], hopeless["tumour"]
    a, b, c, _ = hopeless["students"]
    assert [r.region_id for r in adjudication_queue(project)] == [reg.pk]
    assert accepted_regions(project) == []

    decision = adjudication_decide(
        region=reg,
        expert=hopeless["expert"],
        decision="edit",
        shapes=[{"label_class": tumour.pk, "geometry": square(1410, 1010, 30)}],
        reason="A's gland is real; B outlined stroma",
    )
    assert decision.based_on_id == hopeless["run"].pk
    assert decision.inputs_hash == hopeless["run"].inputs_hash
    assert decision.shapes[0]["label_class"] == tumour.pk
    # The decision is the answer, and the region leaves the queue.
    (answer,) = accepted_regions(project)
    assert answer.region.pk == reg.pk and answer.adjudication.pk == decision.pk
    assert (answer.labels == 1).sum() == 900 and answer.labels.sum() == 900
    assert answer.contested.sum() == 0
    assert answer.class_ids == hopeless["run"].class_ids
    assert adjudication_queue(project) == []
    # Re-scored against the expert (gold source): A matches, B misses, C saw nothing.
    scores = {s["annotator"]: s["dice"] for s in decision.rater_scores}
    assert scores == {a.pk: 1.0, b.pk: 0.0, c.pk: 0.0}
    assert _gold(project, a).sensitivity == pytest.approx(1.0)
    assert _gold(project, a).specificity == pytest.approx(1.0)
    assert _gold(project, b).sensitivity == pytest.approx(0.0)
    assert _gold(project, b).specificity == pytest.approx(1 - 900 / 9100)
    assert _gold(project, c).sensitivity == pytest.approx(0.0)
    assert list(_gold(project, a).evidence) == [f"adjudication:{reg.pk}"]


def test_each_decision_is_a_new_audit_row_and_the_newest_is_current(hopeless):
    project, reg, tumour = hopeless["project"], hopeless["region"], hopeless["tumour"]
    a, b, _, _ = hopeless["students"]
    first = adjudication_decide(
        region=reg,
        expert=hopeless["expert"],
        decision="edit",
        shapes=[{"label_class": tumour.pk, "geometry": square(1410, 1010, 30)}],
        reason="first look",
    )
    second = adjudication_decide(
        region=reg,
        expert=hopeless["manager"],
        decision="redraw",
        shapes=[{"label_class": tumour.pk, "geometry": square(1450, 1050, 30)}],
        reason="second opinion: B was right",
    )
    rows = list(Adjudication.objects.filter(region=reg).order_by("created_at", "id"))
    assert [(r.decision, r.expert_id, r.reason) for r in rows] == [
        ("edit", hopeless["expert"].pk, "first look"),
        ("redraw", hopeless["manager"].pk, "second opinion: B was right"),
    ]
    assert adjudication_current(region=reg).pk == second.pk
    assert accepted_regions(project)[0].adjudication.pk == second.pk
    # The second decision's evidence replaced the first's: one region each, B now right.
    assert _gold(project, b).n_regions == 1 and _gold(project, b).sensitivity == 1.0
    assert _gold(project, a).n_regions == 1 and _gold(project, a).sensitivity == 0.0
    with pytest.raises(ValueError, match="immutable"):
        first.save()


def test_accept_takes_the_consensus_polygons_as_they_are(hopeless):
    reg, run = hopeless["region"], hopeless["run"]
    decision = adjudication_decide(
        region=reg,
        expert=hopeless["expert"],
        decision="accept",
        shapes=[{"label_class": 999, "geometry": "ignored"}],
        reason="the machine is right: nothing here",
    )
    assert decision.shapes == run.polygons
    scores = {s["annotator"]: s["dice"] for s in decision.rater_scores}
    assert scores[hopeless["students"][2].pk] == 1.0  # "nothing" agrees with an empty answer


@pytest.mark.parametrize(
    ("decision", "shapes", "reason", "message"),
    [
        ("edit", [], "  ", "reason"),
        ("approve", [], "why", "decision must be one of"),
        ("redraw", [{"label_class": "tumour", "geometry": square(1410, 1010, 30)}], "x", "class"),
        ("redraw", [{"label_class": "bg", "geometry": square(1410, 1010, 30)}], "x", "background"),
        ("redraw", [{"label_class": "tumour", "geometry": square(10, 10, 30)}], "x", "outside"),
        ("redraw", [{"label_class": "tumour", "geometry": {"type": "Polygon"}}], "x", "shape 0"),
    ],
)
def test_a_bad_decision_is_refused_and_stores_nothing(hopeless, decision, shapes, reason, message):
    ids = {"tumour": hopeless["tumour"].pk}
    ids["bg"] = hopeless["project"].label_classes.get(is_background=True).pk
    if shapes and shapes[0]["label_class"] in ids and message != "class":
        shapes = [{**shapes[0], "label_class": ids[shapes[0]["label_class"]]}]
    with pytest.raises(AdjudicationError, match=message):
        adjudication_decide(
            region=hopeless["region"],
            expert=hopeless["expert"],
            decision=decision,
            shapes=shapes,
            reason=reason,
        )
    assert not Adjudication.objects.exists()
    assert not AnnotatorReliability.objects.filter(source="gold").exists()


def test_accept_or_edit_without_a_consensus_is_refused_but_redraw_works(campaign):
    at_slide_resolution(campaign["project"], campaign["slide"])
    reg = region(campaign["project"], campaign["slide"])
    with pytest.raises(AdjudicationError, match="no consensus"):
        adjudication_decide(region=reg, expert=campaign["expert"], decision="accept", reason="ok")
    decision = adjudication_decide(
        region=reg, expert=campaign["expert"], decision="redraw", shapes=[], reason="empty"
    )
    assert decision.based_on is None and decision.inputs_hash == ""
    (answer,) = accepted_regions(campaign["project"])
    assert answer.run is None and answer.labels.sum() == 0


def test_a_remerge_after_adjudication_keeps_the_decision_and_flags_it(hopeless):
    project, reg, tumour = hopeless["project"], hopeless["region"], hopeless["tumour"]
    decision = adjudication_decide(
        region=reg,
        expert=hopeless["expert"],
        decision="edit",
        shapes=[{"label_class": tumour.pk, "geometry": square(1410, 1010, 30)}],
        reason="A is right",
    )
    # The same inputs again: no new run, nothing flagged.
    assert merge_region(region_id=reg.pk).pk == hopeless["run"].pk
    assert not Adjudication.objects.get(pk=decision.pk).needs_review
    extra_before = Region.objects.get(pk=reg.pk).extra_slots
    # A fourth annotator submits (e.g. a late import): the inputs change, a new run is stored.
    submit(reg, hopeless["students"][3], [(1450, 1050, 30)], tumour)
    rerun = merge_region(region_id=reg.pk)
    assert rerun.pk != hopeless["run"].pk and len(rerun.inputs) == 4
    flagged = Adjudication.objects.get(pk=decision.pk)
    assert flagged.needs_review and flagged.stale_run_id == rerun.pk
    assert Adjudication.objects.count() == 1  # the decision itself is untouched
    assert flagged.shapes == decision.shapes and flagged.reason == "A is right"
    (answer,) = accepted_regions(project)
    assert answer.adjudication.pk == decision.pk and (answer.labels == 1).sum() == 900
    assert answer.run.pk == rerun.pk
    assert Region.objects.get(pk=reg.pk).extra_slots == extra_before  # no more annotators asked
    # Flagged: back in the expert's queue; a new decision clears it.
    assert [r.region_id for r in adjudication_queue(project)] == [reg.pk]
    adjudication_decide(region=reg, expert=hopeless["expert"], decision="accept", reason="ok now")
    assert adjudication_queue(project) == []
