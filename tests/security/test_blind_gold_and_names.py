"""Annotators cannot find the gold regions, and hidden names stay hidden (audit findings 2, 7).

Gold: nothing an annotator sends or reads tells a gold region from another, decided by each
region's project (a user who is an expert elsewhere is still blind where they annotate).
Names: where the project hides names, every reader but managers sees the export's pseudonyms
in submissions, history and reliability, so joining them with the export lineage unmasks
nobody; and a peer's exclusion reason is for managers only.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from annotation.models import (
    AnnotatorReliability,
    Assignment,
    Membership,
    Region,
    SubmissionHistory,
)
from annotation.pseudonyms import annotator_pseudonym, project_secret
from annotation.services.submissions import ShapeInput, submission_save_draft, submission_submit
from learning.exports.gather import Namer
from tests.factories import add_member

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def _auth(world: dict, who: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {world['tokens'][who]}"}


def _gold_slot_for_annotator(world: dict) -> Region:
    """A gold region of project A handed to A's annotator, beside their ordinary region."""
    gold = Region.objects.create(
        project=world["a"],
        slide=world["slide_a"],
        x=800,
        y=200,
        width=513,
        height=513,
        origin="gold",
        round_number=0,
    )
    Assignment.objects.create(
        region=gold,
        annotator=world["users"]["annotator"],
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    return gold


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize("also_expert_elsewhere", [False, True], ids=["annotator", "mixed roles"])
def test_annotator_cannot_tell_gold_regions_by_filter_field_or_count(
    two_projects, client, also_expert_elsewhere
):
    world = two_projects
    gold = _gold_slot_for_annotator(world)
    ordinary = world["region_a"]
    if also_expert_elsewhere:
        # The audit's case: an expert in B who annotates in A saw A's origins.
        add_member(world["b"], world["users"]["annotator"], "expert")
    auth = _auth(world, "annotator")
    everything = _ids(client.get(f"/api/regions/?project={world['a'].pk}", **auth))
    assert sorted(everything) == sorted([gold.pk, ordinary.pk])
    # Every value of every provenance filter answers alike for A's regions: none of them.
    answers = {
        f"{name}={value}": [
            pk
            for pk in _ids(client.get(f"/api/regions/?{name}={value}", **auth))
            if pk in (gold.pk, ordinary.pk)
        ]
        for name, values in {
            "origin": ["gold", "seeded", "manual", "proposed"],
            "round_number": ["0", "1"],
            "status": ["open", "closed"],
        }.items()
        for value in values
    }
    assert all(found == [] for found in answers.values()), answers
    # The two regions' answers have the same keys, and differ only where any two regions do.
    listed = client.get(f"/api/regions/?project={world['a'].pk}", **auth).json()["results"]
    rows = {row["id"]: row for row in listed}
    detail = client.get(f"/api/regions/{gold.pk}/", **auth).json()
    assert set(rows[gold.pk]) == set(rows[ordinary.pk]) == set(detail)
    located = {"id", "x", "y", "width", "height", "slide", "project", "dzi_url"}
    assert set(detail) <= located, set(detail) - located


def test_experts_still_filter_and_see_origins(two_projects, client):
    """The control: the refusal above is about the annotator, not a broken filter."""
    world = two_projects
    gold = _gold_slot_for_annotator(world)
    auth = _auth(world, "expert")
    assert _ids(client.get("/api/regions/?origin=gold", **auth)) == [gold.pk]
    assert client.get(f"/api/regions/{gold.pk}/", **auth).json()["origin"] == "gold"


def test_gold_score_is_not_in_the_annotators_answers(two_projects, client):
    world = two_projects
    gold = _gold_slot_for_annotator(world)
    ring = [[900, 300], [1000, 300], [1000, 400], [900, 400], [900, 300]]
    shapes = [ShapeInput(world["class_a"].pk, {"type": "Polygon", "coordinates": [ring]})]
    # The expert's reference outline, then the student's.
    expert_slot = Assignment.objects.create(
        region=gold,
        annotator=world["users"]["expert"],
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    submission_save_draft(assignment=expert_slot, expected_version=1, shapes=shapes)
    submission_submit(
        assignment=expert_slot, expected_version=2, outcome="shapes", user=expert_slot.annotator
    )
    slot = Assignment.objects.get(region=gold, annotator=world["users"]["annotator"])
    auth = _auth(world, "annotator")
    body = {"shapes": [{"label_class": world["class_a"].pk, "geometry": shapes[0].geometry}]}
    put = client.put(
        f"/api/assignments/{slot.pk}/work/",
        body,
        content_type="application/json",
        HTTP_IF_MATCH='"1"',
        **auth,
    )
    assert put.status_code == 200
    done = client.post(
        f"/api/assignments/{slot.pk}/submit/",
        {"outcome": "shapes"},
        content_type="application/json",
        HTTP_IF_MATCH='"2"',
        **auth,
    )
    assert done.status_code == 200 and done.json()["gold_dice"] is None
    assert client.get(f"/api/assignments/{slot.pk}/work/", **auth).json()["gold_dice"] is None
    mine = client.get(f"/api/regions/{gold.pk}/submissions/", **auth).json()["results"]
    assert [row["gold_dice"] for row in mine] == [None]
    # It was scored: the expert reads the score.
    theirs = client.get(f"/api/regions/{gold.pk}/submissions/", **_auth(world, "expert"))
    scores = [row["gold_dice"] for row in theirs.json()["results"]]
    assert pytest.approx(1.0) in scores


def _strings(value: object) -> set[str]:
    """Every string value in a JSON answer (keys left out: "annotator" is also a key)."""
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value))
    return {value} if isinstance(value, str) else set()


def _submitted_work(world: dict) -> int:
    slot = world["assignment_a"]
    ring = [[300, 300], [420, 300], [420, 420], [300, 420], [300, 300]]
    shapes = [ShapeInput(world["class_a"].pk, {"type": "Polygon", "coordinates": [ring]})]
    submission_save_draft(assignment=slot, expected_version=1, shapes=shapes)
    submission = submission_submit(
        assignment=slot, expected_version=2, outcome="shapes", user=slot.annotator
    )
    AnnotatorReliability.objects.create(
        project=world["a"], annotator=slot.annotator, source="staple", sensitivity=0.9
    )
    return submission.pk


@pytest.mark.parametrize("reader", ["expert", "researcher"])
def test_hidden_names_are_the_exports_pseudonyms_for_every_reader_but_managers(
    two_projects, client, reader
):
    world = two_projects
    submission_id = _submitted_work(world)
    annotator = world["users"]["annotator"]
    alias = annotator_pseudonym(world["a"], annotator.pk)
    # The same name the export's lineage gives this person.
    assert Namer(project_secret(world["a"]), True).annotator(annotator.pk) == alias
    auth = _auth(world, reader)
    region = world["region_a"].pk
    submissions = client.get(f"/api/regions/{region}/submissions/", **auth)
    history = client.get(f"/api/regions/{region}/history/", **auth)
    reliability = client.get(f"/api/projects/{world['a'].pk}/reliability/", **auth)
    assert submissions.status_code == history.status_code == 200
    assert [(r["id"], r["annotator"]) for r in submissions.json()["results"]] == [
        (submission_id, alias)
    ]
    assert [r["user"] for r in history.json()["results"]] == [alias]
    if reader == "expert":  # experts read every annotator's figures; researchers their own
        assert [r["username"] for r in reliability.json()] == [alias]
    for response in (submissions, history, reliability):
        assert annotator.username not in _strings(response.json())


def test_managers_and_name_showing_projects_see_usernames(two_projects, client):
    """The control: names are replaced only where the rule says so."""
    world = two_projects
    _submitted_work(world)
    region = world["region_a"].pk
    name = world["users"]["annotator"].username
    as_manager = client.get(f"/api/regions/{region}/submissions/", **_auth(world, "manager"))
    assert [r["annotator"] for r in as_manager.json()["results"]] == [name]
    world["a"].show_annotator_names = True
    world["a"].save(update_fields=["show_annotator_names"])
    as_expert = client.get(f"/api/regions/{region}/history/", **_auth(world, "expert"))
    assert [r["user"] for r in as_expert.json()["results"]] == [name]
    assert SubmissionHistory.objects.count() == 1


def test_annotators_cannot_read_a_peers_exclusion_reason(two_projects, client):
    world = two_projects
    peer = Membership.objects.get(project=world["a"], user=world["users"]["expert"])
    Membership.objects.filter(pk=peer.pk).update(excluded=True, excluded_reason="plagiarism")
    url = f"/api/projects/{world['a'].pk}/members/"
    as_annotator = client.get(url, **_auth(world, "annotator"))
    assert as_annotator.status_code == 200
    assert b"plagiarism" not in as_annotator.content
    as_manager = client.get(url, **_auth(world, "manager"))
    reasons = [m["excluded_reason"] for m in as_manager.json()["results"]]
    assert "plagiarism" in reasons
