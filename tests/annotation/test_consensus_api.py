"""The consensus API: who reads a region's consensus, reliability and the adjudication queue."""

from __future__ import annotations

import pytest

from annotation.models import Project
from annotation.services.assignments import assignment_next
from annotation.services.merge import merge_region
from tests.annotation.merge_helpers import at_slide_resolution, region, submit
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.annotation.urls_consensus")]


@pytest.fixture
def merged(campaign):
    """Two regions merged: one accepted, one for an expert; a fourth student yet to work."""
    project = campaign["project"]
    at_slide_resolution(project, campaign["slide"])
    Project.objects.filter(pk=project.pk).update(gold_mix_rate=0.0)
    s, tumour = campaign["students"], campaign["tumour"]
    good = region(project, campaign["slide"], 1000, 1000)
    bad = region(project, campaign["slide"], 1200, 1000)
    for user in s[:3]:
        submit(good, user, [(1010, 1010, 40)], tumour)
    submit(bad, s[0], [(1210, 1010, 30)], tumour)
    submit(bad, s[1], [(1250, 1050, 30)], tumour)
    submit(bad, s[2], outcome="nothing")
    runs = {"good": merge_region(region_id=good.pk), "bad": merge_region(region_id=bad.pk)}
    return {**campaign, "good": good, "bad": bad, "runs": runs}


def test_managers_experts_and_researchers_read_a_regions_consensus(merged, client):
    for who in ("manager", "expert", "researcher"):
        client.force_login(merged[who])
        response = client.get(f"/api/regions/{merged['good'].pk}/consensus/")
        assert response.status_code == 200, who
        body = response.json()
        assert body["current"]["id"] == merged["runs"]["good"].pk
        assert body["current"]["status"] == "accepted"
        assert body["current"]["polygons"][0]["label_class"] == merged["tumour"].pk
        assert [r["id"] for r in body["runs"]] == [merged["runs"]["good"].pk]


def test_annotators_and_outsiders_get_404_for_consensus_even_after_submitting(merged, client):
    outsider = make_user("outsider")
    for user in [*merged["students"], outsider]:
        client.force_login(user)
        response = client.get(f"/api/regions/{merged['good'].pk}/consensus/")
        assert response.status_code == 404
        assert b"1010" not in response.content
    client.logout()
    assert client.get(f"/api/regions/{merged['good'].pk}/consensus/").status_code == 401


def test_student_probing_consensus_and_reliability_before_submitting_sees_nothing_of_peers(
    merged, client
):
    project, late = merged["project"], merged["students"][3]
    # The accepted region's peers are done; the late student gets the next open slot and probes.
    extra = region(project, merged["slide"], 1400, 1000)
    slot = assignment_next(project=project, user=late)
    assert slot is not None and slot.region_id == extra.pk
    client.force_login(late)
    peers = {str(u.pk) for u in merged["students"][:3]}
    for url in (
        f"/api/regions/{merged['good'].pk}/consensus/",
        f"/api/regions/{merged['bad'].pk}/consensus/",
        f"/api/regions/{extra.pk}/consensus/",
        f"/api/projects/{project.pk}/adjudication-queue/",
    ):
        assert client.get(url).status_code == 404, url
    response = client.get(f"/api/projects/{project.pk}/reliability/")
    assert response.status_code == 200
    assert response.json() == []  # no reliability of their own yet, and none of the peers'
    for user in merged["students"][:3]:
        assert user.username.encode() not in response.content
    assert not peers & {str(r.get("annotator")) for r in response.json()}


def test_reliability_managers_and_experts_see_all_students_only_their_own(merged, client):
    project = merged["project"]
    url = f"/api/projects/{project.pk}/reliability/"
    for who in ("manager", "expert"):
        client.force_login(merged[who])
        rows = client.get(url).json()
        assert {r["annotator"] for r in rows} == {u.pk for u in merged["students"][:3]}, who
        assert all(r["source"] == "staple" and r["n_regions"] >= 1 for r in rows)
    student = merged["students"][0]
    client.force_login(student)
    rows = client.get(url).json()
    assert [r["annotator"] for r in rows] == [student.pk]
    client.force_login(make_user("stranger"))
    assert client.get(url).status_code == 404


def test_adjudication_queue_for_experts_and_managers_only(merged, client):
    url = f"/api/projects/{merged['project'].pk}/adjudication-queue/"
    for who in ("manager", "expert"):
        client.force_login(merged[who])
        response = client.get(url)
        assert response.status_code == 200
        queue = response.json()
        assert [q["region"] for q in queue] == [merged["bad"].pk]
        # (1 - 0) x contested pixels: two 30x30 squares, each marked by one of three raters.
        assert queue[0]["priority"] == pytest.approx(1800.0)
    for user in (merged["researcher"], merged["students"][0]):
        client.force_login(user)
        assert client.get(url).status_code == 404
