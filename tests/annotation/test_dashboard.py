"""The project dashboard: figures worked out by hand, and who sees which section."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import AnnotatorReliability, Project
from annotation.selectors_consensus import adjudication_queue
from annotation.selectors_dashboard import (
    agreement_histogram,
    annotator_figures,
    dashboard_for,
    histogram,
    region_pipeline,
)
from tests.annotation.dashboard_helpers import make_region, make_run, submitted
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.annotation.urls_dashboard")]


def _url(project: Project) -> str:
    return reverse("dashboard:project", kwargs={"project_id": project.pk})


@pytest.fixture
def runs(campaign):
    """Three merged regions with Dice 0.9, 0.6 and 0.3; the 0.3 one superseded an older 0.1."""
    p, s = campaign["project"], campaign["slide"]
    regions = [make_region(p, s, x=1000 + 200 * i) for i in range(3)]
    make_run(regions[2], 0.1, "needs_adjudication", contested_fraction=0.5)
    make_run(regions[0], 0.9, "accepted")
    make_run(regions[1], 0.6, "needs_more")
    make_run(regions[2], 0.3, "needs_adjudication", contested_fraction=0.4)
    return regions


def test_histogram_bins_values_by_hand():
    h = histogram([0.0, 0.3, 0.6, 0.9, 0.95, 1.0, 0.1 + 0.2])
    # 0.1 + 0.2 = 0.30000000000000004 and 0.3 both belong to [0.3, 0.4); 1.0 to the last bin.
    assert h.counts == [1, 0, 0, 2, 0, 0, 1, 0, 0, 3]
    assert h.edges[0] == 0.0 and h.edges[-1] == 1.0 and h.total == 7


def test_agreement_histogram_counts_each_regions_current_run_once(runs, campaign):
    h = agreement_histogram(campaign["project"])
    assert h.counts == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]  # the superseded 0.1 is not counted


def test_pipeline_counts_where_each_region_waits(runs, campaign):
    p, s, students = campaign["project"], campaign["slide"], campaign["students"]
    # k = 3. runs: one accepted, one needs more (still 0 of 3 + 0 extra submitted -> waiting for
    # more annotators), one in the adjudication queue.
    make_region(p, s, x=3000)  # nothing submitted: being annotated
    full = make_region(p, s, x=3200)  # all three slots submitted, no run yet: waiting for merge
    for student in students[:3]:
        submitted(full, student)
    half = make_region(p, s, x=3400)  # one of three: still being annotated
    submitted(half, students[0])
    topped_up = make_region(p, s, x=3600, extra_slots=1)  # needs more, the 4th has submitted
    make_run(topped_up, 0.7, "needs_more")
    for student in students:
        submitted(topped_up, student)
    make_region(p, s, origin="gold", x=3800)
    pipeline = region_pipeline(p, {r.region_id for r in adjudication_queue(p)})
    assert (
        pipeline.annotating,
        pipeline.waiting_merge,
        pipeline.needs_more,
        pipeline.needs_adjudication,
        pipeline.adjudicated,
        pipeline.accepted,
        pipeline.gold,
    ) == (2, 2, 1, 1, 0, 1, 1)
    assert pipeline.total == 7
    assert pipeline.samples["waiting_merge"] == [full.pk, topped_up.pk]
    # A needs-adjudication run that has left the queue counts as decided.
    decided = region_pipeline(p, set())
    assert (decided.needs_adjudication, decided.adjudicated) == (0, 1)


def test_annotator_figures_count_throughput_gold_and_prefer_gold_reliability(campaign):
    p, s, (a, b, *_) = campaign["project"], campaign["slide"], campaign["students"]
    regions = [make_region(p, s, x=1000 + 200 * i) for i in range(3)]
    for r, secs in zip(regions, (30, 60, 120), strict=True):
        submitted(r, a, seconds=secs)
    gold = make_region(p, s, origin="gold", x=2000)
    submitted(gold, b, gold_dice=0.5)
    AnnotatorReliability.objects.create(
        project=p, annotator=a, source="staple", sensitivity=0.8, specificity=0.9, n_regions=3
    )
    AnnotatorReliability.objects.create(
        project=p, annotator=b, source="staple", sensitivity=0.4, specificity=0.5, n_regions=1
    )
    AnnotatorReliability.objects.create(
        project=p, annotator=b, source="gold", sensitivity=0.7, specificity=0.95, n_regions=1
    )
    rows = {f.username: f for f in annotator_figures(p)}
    assert len(rows) == 4  # every annotator, with or without work
    assert (rows["s0"].submitted, rows["s0"].submitted_recent, rows["s0"].median_seconds) == (
        3,
        3,
        60,
    )
    assert (rows["s0"].sensitivity, rows["s0"].reliability_source) == (0.8, "staple")
    assert (rows["s1"].gold_scored, rows["s1"].gold_mean_dice) == (1, 0.5)
    assert (rows["s1"].sensitivity, rows["s1"].specificity, rows["s1"].reliability_source) == (
        0.7,
        0.95,
        "gold",
    )
    assert rows["s2"].submitted == 0 and rows["s2"].sensitivity is None
    assert [f.username for f in annotator_figures(p)][:2] == ["s0", "s1"]


def test_manager_page_shows_histogram_pipeline_queue_and_every_annotator(runs, campaign, client):
    client.force_login(campaign["manager"])
    response = client.get(_url(campaign["project"]))
    assert response.status_code == 200
    html = response.content.decode()
    for i, expected in enumerate([0, 0, 0, 1, 0, 0, 1, 0, 0, 1]):
        assert f'data-bin="{i}" data-low="{i / 10:g}" data-count="{expected}"' in html
    assert 'data-testid="step-accepted" data-count="1"' in html
    assert 'data-testid="step-needs_more" data-count="1"' in html
    assert 'data-testid="queue-length">1<' in html
    pk = runs[2].pk  # its expert page where adjudication is routed, else its consensus JSON
    assert f"/adjudicate/{pk}/" in html or reverse("region-consensus", args=[pk]) in html
    for student in campaign["students"]:
        assert f'data-annotator="{student.username}"' in html
    assert 'data-testid="throughput-chart"' in html and 'data-testid="reliability-chart"' in html


def test_expert_sees_the_queue_but_not_the_annotators(runs, campaign, client):
    client.force_login(campaign["expert"])
    html = client.get(_url(campaign["project"])).content.decode()
    assert 'data-testid="queue-length">1<' in html and 'data-testid="decisions">0<' in html
    d = dashboard_for(campaign["expert"], campaign["project"].pk)
    assert d.expert.queue_length == 1 and [r.region_id for r in d.expert.preview] == [runs[2].pk]
    assert d.annotators is None and "data-annotator=" not in html


def test_without_recorded_decisions_the_page_says_so_instead_of_zero(
    runs, campaign, client, monkeypatch
):
    monkeypatch.setattr("annotation.selectors_dashboard._adjudication_model", lambda: None)
    client.force_login(campaign["expert"])
    html = client.get(_url(campaign["project"])).content.decode()
    assert 'title="Adjudication decisions are not recorded yet">—<' in html


def test_researcher_sees_agreement_but_no_queue_and_no_annotators(runs, campaign, client):
    client.force_login(campaign["researcher"])
    html = client.get(_url(campaign["project"])).content.decode()
    assert 'data-testid="agreement-histogram"' in html
    assert 'data-testid="queue-length"' not in html and "data-annotator=" not in html


def test_student_sees_only_their_own_figures_and_no_consensus(runs, campaign, client):
    p, s, (a, b, *_) = campaign["project"], campaign["slide"], campaign["students"]
    submitted(make_region(p, s, x=4000), a)
    AnnotatorReliability.objects.create(
        project=p, annotator=a, source="staple", sensitivity=0.81, specificity=0.93, n_regions=1
    )
    AnnotatorReliability.objects.create(
        project=p, annotator=b, source="staple", sensitivity=0.42, specificity=0.57, n_regions=1
    )
    client.force_login(a)
    html = client.get(_url(p)).content.decode()
    assert 'data-testid="own-submitted">1<' in html
    assert 'data-testid="own-sensitivity">0.81<' in html
    assert "0.42" not in html and "0.57" not in html and b.username not in html
    assert "agreement-histogram" not in html and "data-bin=" not in html
    assert 'data-testid="step-' not in html and "queue-length" not in html


def test_outsiders_get_404_and_anonymous_users_the_login_page(campaign, client):
    assert client.get(_url(campaign["project"])).status_code == 302
    client.force_login(make_user("stranger"))
    assert client.get(_url(campaign["project"])).status_code == 404


def test_an_empty_project_renders_its_empty_states(campaign, client):
    client.force_login(campaign["manager"])
    html = client.get(_url(campaign["project"])).content.decode()
    assert "No region has been merged yet" in html and "Nothing waits for an expert" in html


def test_an_expert_decision_moves_the_region_out_of_the_queue_and_counts_for_its_expert(
    runs, campaign, client
):
    from annotation.models.adjudication import Adjudication

    Adjudication.objects.create(
        region=runs[2],
        expert=campaign["expert"],
        decision="accept",
        reason="clear glands",
        based_on=runs[2].consensus_runs.order_by("-id").first(),
    )
    d = dashboard_for(campaign["manager"], campaign["project"].pk)
    assert (d.pipeline.needs_adjudication, d.pipeline.adjudicated) == (0, 1)
    assert (d.expert.queue_length, d.expert.decisions, d.expert.per_expert) == (0, 1, [("exp", 1)])
    client.force_login(campaign["manager"])
    html = client.get(_url(campaign["project"])).content.decode()
    assert 'data-testid="decisions">1<' in html
    assert 'data-testid="step-adjudicated" data-count="1"' in html
