"""Ids of another project inside bodies and query strings are refused, and nothing changes.

A member of project A names project B's slide, class, assignment, member, region or user in a
body (or a filter), through the API and the set-up forms. Each call must answer 4xx (or, for a
list filter, show none of B's rows) and leave every table byte-identical.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import GuidelineImage
from tests.security.conftest import table_dump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

SQUARE = {"type": "Polygon", "coordinates": [[[300, 300], [400, 300], [400, 400], [300, 300]]]}


@dataclass(frozen=True)
class Probe:
    name: str
    caller: str
    method: str
    url: str  # formatted with the world's ids
    body: Any = None
    multipart: bool = False
    expect: tuple[int, ...] = (400,)
    headers: tuple[tuple[str, str], ...] = ()


PROBES = [
    Probe(
        "region on another project's slide",
        "manager",
        "post",
        "/api/regions/",
        {"project": "{a}", "slide": "{slide_b}", "x": 0, "y": 0, "width": 64, "height": 64},
    ),
    Probe(
        "region in another project",
        "manager",
        "post",
        "/api/regions/",
        {"project": "{b}", "slide": "{slide_b}", "x": 0, "y": 0, "width": 64, "height": 64},
    ),
    Probe(
        "gold region on another project's slide",
        "expert",
        "post",
        "/api/regions/",
        {
            "project": "{a}",
            "slide": "{slide_b}",
            "x": 0,
            "y": 0,
            "width": 64,
            "height": 64,
            "origin": "gold",
        },
    ),
    Probe(
        "draft shape with another project's class",
        "annotator",
        "put",
        "/api/assignments/{assignment_a}/work/",
        {"shapes": [{"label_class": "{class_b}", "geometry": SQUARE}]},
        headers=(("If-Match", '"1"'),),
    ),
    Probe(
        "draft region label of another project",
        "annotator",
        "put",
        "/api/assignments/{assignment_a}/work/",
        {"shapes": [], "region_label": "{class_b}"},
        headers=(("If-Match", '"1"'),),
    ),
    Probe(
        "draft on another project's assignment",
        "annotator",
        "put",
        "/api/assignments/{assignment_b}/work/",
        {"shapes": []},
        expect=(404,),
        headers=(("If-Match", '"1"'),),
    ),
    Probe(
        "submit another project's assignment",
        "annotator",
        "post",
        "/api/assignments/{assignment_b}/submit/",
        {"outcome": "nothing"},
        expect=(404,),
        headers=(("If-Match", '"1"'),),
    ),
    Probe(
        "adjudication redraw with another project's class",
        "expert",
        "post",
        "/api/regions/{region_a}/adjudication/",
        {
            "decision": "redraw",
            "reason": "wrong gland",
            "shapes": [{"label_class": "{class_b}", "geometry": SQUARE}],
        },
    ),
    Probe(
        "adjudication of another project's region",
        "expert",
        "post",
        "/api/regions/{region_b}/adjudication/",
        {"decision": "redraw", "reason": "x", "shapes": []},
        expect=(404,),
    ),
    Probe(
        "reassign to a user of another project",
        "manager",
        "post",
        "/api/assignments/{assignment_a}/reassign/",
        {"username": "b_annotator"},
    ),
    Probe(
        "reassign another project's assignment",
        "manager",
        "post",
        "/api/assignments/{assignment_b}/reassign/",
        {"username": "annotator"},
        expect=(404,),
    ),
    Probe(
        "release another project's assignment",
        "manager",
        "post",
        "/api/assignments/{assignment_b}/release/",
        {},
        expect=(404,),
    ),
    Probe(
        "import annotations onto another project's slide",
        "manager",
        "post",
        "/api/projects/{a}/import-annotations/",
        {"slide": "{slide_b}", "source": "x", "file": "qupath"},
        multipart=True,
    ),
    Probe(
        "member of another project, changed through this project's URL",
        "manager",
        "patch",
        "/api/projects/{a}/members/{member_b}/",
        {"role": "manager"},
        expect=(404,),
    ),
    Probe(
        "member of another project, removed through this project's URL",
        "manager",
        "delete",
        "/api/projects/{a}/members/{member_b}/",
        expect=(404,),
    ),
    Probe(
        "member of another project, excluded through this project's URL",
        "manager",
        "post",
        "/api/projects/{a}/members/{member_b}/exclude/",
        {"reason": "spam"},
        expect=(404,),
    ),
    Probe(
        "class of another project, renamed through this project's URL",
        "manager",
        "patch",
        "/api/projects/{a}/label-classes/{class_b}/",
        {"name": "hijacked"},
        expect=(404,),
    ),
    Probe(
        "class of another project, deleted through this project's URL",
        "manager",
        "delete",
        "/api/projects/{a}/label-classes/{class_b}/",
        expect=(404,),
    ),
    Probe(
        "slide mpp of another project",
        "manager",
        "post",
        "/api/slides/{slide_b}/set-mpp/",
        {"mpp": 0.25},
        expect=(404,),
    ),
    Probe(
        "export selecting another project's class",
        "researcher",
        "post",
        "/api/projects/{a}/exports/",
        {"class_ids": ["{class_b}"]},
    ),
    Probe(
        "export selecting this project's class and another's",
        "manager",
        "post",
        "/api/projects/{a}/exports/",
        {"class_ids": ["{class_a}", "{class_b}"]},
    ),
    Probe(
        "export requested in another project",
        "manager",
        "post",
        "/api/projects/{b}/exports/",
        {"class_ids": ["{class_b}"]},
        expect=(404,),
    ),
    Probe(
        "set-up form: reassign to a user of another project",
        "manager",
        "post",
        "/projects/{a}/setup/assignments/{assignment_a}/reassign/",
        {"username": "b_annotator"},
        multipart=True,
        expect=(302,),
    ),
    Probe(
        "set-up form: release another project's assignment",
        "manager",
        "post",
        "/projects/{a}/setup/assignments/{assignment_b}/release/",
        {},
        multipart=True,
        expect=(404,),
    ),
    Probe(
        "set-up form: exclude another project's member",
        "manager",
        "post",
        "/projects/{a}/setup/members/{member_b}/exclude/",
        {"reason": "spam"},
        multipart=True,
        expect=(404,),
    ),
]


def _ids(world: dict) -> dict[str, int]:
    keys = ("a", "b", "slide_a", "slide_b", "class_a", "class_b", "region_a", "region_b")
    ids = {k: world[k].pk for k in keys}
    ids.update(
        assignment_a=world["assignment_a"].pk,
        assignment_b=world["assignment_b"].pk,
        member_b=world["member_b"].pk,
    )
    return ids


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.name)
def test_another_projects_id_in_a_body_is_refused_and_nothing_changes(
    probe, two_projects, client, shared_data
):
    ids = _ids(two_projects)
    client.force_login(two_projects["users"][probe.caller])
    url = probe.url.format(**ids)
    body = _fill(probe.body, ids)
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in probe.headers}
    before = table_dump()
    call = getattr(client, probe.method)
    if probe.multipart:
        if body.get("file") == "qupath":
            path = shared_data / "annotations" / "qupath05.geojson"
            body["file"] = SimpleUploadedFile(path.name, path.read_bytes())
        response = call(url, body, **headers)
    elif body is None:
        response = call(url, **headers)
    else:
        response = call(url, json.dumps(body), content_type="application/json", **headers)
    assert response.status_code in probe.expect, (
        probe.name,
        response.status_code,
        response.content,
    )
    assert table_dump() == before, f"{probe.name}: a refused write changed rows"


def test_filters_naming_another_project_show_none_of_its_rows(two_projects, client):
    w = two_projects
    b_ids = {
        "/api/regions/": w["region_b"].pk,
        "/api/slides/": w["slide_b"].pk,
        "/api/assignments/": w["assignment_b"].pk,
        "/api/projects/": w["b"].pk,
    }
    for caller in ("manager", "expert", "annotator", "researcher"):
        client.force_login(w["users"][caller])
        for url, query in (
            ("/api/regions/", {"project": w["b"].pk}),
            ("/api/regions/", {"slide": w["slide_b"].pk}),
            ("/api/slides/", {"projects": w["b"].pk}),
            ("/api/assignments/", {"region__project": w["b"].pk}),
            ("/api/projects/", {}),
        ):
            response = client.get(url, query)
            # 200 and empty, the same answer as for an id that does not exist.
            assert response.status_code == 200, (caller, url, response.content)
            body = response.json()
            rows = body["results"] if isinstance(body, dict) else body
            assert b_ids[url] not in {r["id"] for r in rows}, (caller, url, rows)
            assert not [r for r in rows if r.get("project") == w["b"].pk], (caller, url, rows)
            missing = client.get(url, {k: 2**62 for k in query})
            assert missing.status_code == response.status_code, (url, missing.content)
            too_big = client.get(url, {k: 2**64 for k in query})
            assert too_big.status_code in ((400,) if query else (200,)), (url, too_big.content)


def test_export_of_another_projects_slide_is_404(two_projects, client):
    w = two_projects
    client.force_login(w["users"]["manager"])
    response = client.get(
        f"/api/projects/{w['a'].pk}/export-annotations/", {"slide": w["slide_b"].pk}
    )
    assert response.status_code == 404


def test_guideline_image_of_another_project_is_404_through_this_projects_url(
    two_projects, client, shared_data
):
    w = two_projects
    image = GuidelineImage(project=w["b"], caption="b only")
    image.image.save(
        "b.png", ContentFile((shared_data / "images" / "skimage_ihc.png").read_bytes())
    )
    client.force_login(w["users"]["manager"])
    response = client.get(f"/projects/{w['a'].pk}/setup/guideline-images/{image.pk}/")
    assert response.status_code == 404


def test_invite_csv_of_an_existing_user_changes_neither_their_account_nor_other_projects(
    two_projects, client
):
    """The CSV names users by username: an existing one is added to A, but the e-mail in the
    CSV must not overwrite theirs (that would hand the password reset to the inviter)."""
    from django.contrib.auth import get_user_model

    from annotation.models import Membership

    w = two_projects
    victim = w["users"]["outsider"]
    victim.email = "outsider@example.org"
    victim.save()
    before_user = get_user_model().objects.filter(pk=victim.pk).values().get()
    before_b = list(Membership.objects.filter(project=w["b"]).order_by("pk").values())
    client.force_login(w["users"]["manager"])
    csv = SimpleUploadedFile(
        "people.csv", b"username,email,role\noutsider,evil@example.org,annotator\n"
    )
    response = client.post(f"/api/projects/{w['a'].pk}/invite-csv/", {"file": csv})
    assert response.status_code == 200, response.content
    assert response.json()["added"] == ["outsider"]
    assert get_user_model().objects.filter(pk=victim.pk).values().get() == before_user
    assert list(Membership.objects.filter(project=w["b"]).order_by("pk").values()) == before_b


def test_another_projects_id_is_refused_exactly_like_a_missing_one(two_projects, client):
    """No oracle: the answer for B's project or slide equals the answer for an unused id."""
    w = two_projects
    client.force_login(w["users"]["manager"])
    region = {"x": 0, "y": 0, "width": 64, "height": 64}

    def post(project: int, slide: int) -> tuple[int, dict]:
        body = json.dumps({**region, "project": project, "slide": slide})
        response = client.post("/api/regions/", body, content_type="application/json")
        detail = {k: [re.sub(r"\d+", "N", m) for m in v] for k, v in response.json().items()}
        return response.status_code, detail

    missing = 10**9
    assert post(w["b"].pk, w["slide_a"].pk) == post(missing, w["slide_a"].pk)
    assert post(w["a"].pk, w["slide_b"].pk) == post(w["a"].pk, missing)
    assert post(w["a"].pk, w["slide_b"].pk)[0] == 400
