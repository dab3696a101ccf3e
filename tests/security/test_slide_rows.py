"""One project's actions never read or change what another project sees of a shared file.

The audit (issue 14, finding 3): project B's manager registered the path of a file project A
held, got A's slide row back, then read A's access log (usernames) and set the mpp A works at.
A slide row now belongs to one project (``annotation.ProjectSlide``): the same file registered in
B is a row of B's own.
"""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, transaction

from annotation.models import ProjectSlide, Region
from slides.models import Slide, SlideAccess

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def _json(client, method: str, url: str, body: dict | None = None):  # noqa: ANN202
    return getattr(client, method)(url, body or {}, content_type="application/json")


def _rows_of_a(world: dict) -> str:
    """Everything A sees of its slide: the row, its access log, A's links and regions."""
    slide_a = world["slide_a"]
    rows = {
        "slide": list(Slide.objects.filter(pk=slide_a.pk).values()),
        "access": list(SlideAccess.objects.filter(slide=slide_a).order_by("pk").values()),
        "links": list(ProjectSlide.objects.filter(project=world["a"]).order_by("pk").values()),
        "regions": list(Region.objects.filter(project=world["a"]).order_by("pk").values()),
    }
    return json.dumps(rows, default=str, sort_keys=True)


def test_manager_registering_a_path_another_project_holds_gets_a_row_of_its_own(
    client, two_projects
):
    world = two_projects
    users, slide_a, b = world["users"], world["slide_a"], world["b"]
    Slide.objects.filter(pk=slide_a.pk).update(case_key="A-case-17")
    # A's annotator opens A's slide: A's access log now names her.
    client.force_login(users["annotator"])
    assert client.get(f"/api/slides/{slide_a.pk}/thumbnail/").status_code == 200
    client.force_login(users["manager"])
    log_a = client.get(f"/api/slides/{slide_a.pk}/access-log/").json()["results"]
    assert [row["username"] for row in log_a] == ["annotator"]
    mpp_a = client.get(f"/api/slides/{slide_a.pk}/").json()["mpp"]
    before = _rows_of_a(world)

    # B's manager registers the very file A holds.
    client.force_login(users["outsider"])
    response = _json(client, "post", f"/api/projects/{b.pk}/slides/", {"path": slide_a.path})
    assert response.status_code == 201, response.content
    own = response.json()
    assert own["id"] != slide_a.pk
    # Nothing of A's row comes back: not its case key, mpp, ingest state or access.
    assert own["case_key"] == "" and own["status"] == "pending" and own["mpp"] is None
    assert own["project_ids"] == [b.pk]
    again = _json(client, "post", f"/api/projects/{b.pk}/slides/", {"path": slide_a.path})
    assert again.status_code == 200 and again.json()["id"] == own["id"]

    # With A's slide id in hand, B's manager can neither read A's log nor change A's mpp.
    refused = [
        client.get(f"/api/slides/{slide_a.pk}/access-log/"),
        _json(client, "post", f"/api/slides/{slide_a.pk}/set-mpp/", {"mpp": 9.5}),
        _json(client, "post", f"/api/slides/{slide_a.pk}/retry/"),
        client.get(f"/api/slides/{slide_a.pk}/"),
    ]
    assert [r.status_code for r in refused] == [404, 404, 404, 404]
    # B's own row: its log holds none of A's readers, and its mpp is B's alone.
    log_b = client.get(f"/api/slides/{own['id']}/access-log/")
    assert log_b.status_code == 200 and log_b.json()["results"] == []
    set_b = _json(client, "post", f"/api/slides/{own['id']}/set-mpp/", {"mpp": 9.5})
    assert set_b.status_code == 200 and set_b.json()["mpp"] == 9.5
    listed = [s["id"] for s in client.get("/api/slides/").json()["results"]]
    assert slide_a.pk not in listed and own["id"] in listed

    # A's rows are byte-identical, and A's members still see A's mpp.
    assert _rows_of_a(world) == before
    client.force_login(users["manager"])
    assert client.get(f"/api/slides/{slide_a.pk}/").json()["mpp"] == mpp_a
    client.force_login(users["annotator"])
    assert own["id"] not in [s["id"] for s in client.get("/api/slides/").json()["results"]]


def test_the_database_refuses_a_slide_row_in_two_projects(two_projects):
    with pytest.raises(IntegrityError), transaction.atomic():
        two_projects["b"].slides.add(two_projects["slide_a"])
    assert list(two_projects["slide_a"].projects.all()) == [two_projects["a"]]
