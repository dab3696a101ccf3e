"""The adjudication API and pages: experts and managers decide; nobody else learns a thing."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from annotation.models import Adjudication, AnnotatorReliability, Project
from annotation.services.merge import merge_region
from tests.annotation.conftest import square
from tests.annotation.merge_helpers import at_slide_resolution, region, submit
from tests.factories import make_project, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.annotation.urls_adjudication")]


@pytest.fixture
def contested(campaign):
    project = campaign["project"]
    at_slide_resolution(project, campaign["slide"])
    Project.objects.filter(pk=project.pk).update(consensus_method="majority_vote")
    s, tumour = campaign["students"], campaign["tumour"]
    reg = region(project, campaign["slide"], 1200, 1000)
    submit(reg, s[0], [(1210, 1010, 30)], tumour)
    submit(reg, s[1], [(1250, 1050, 30)], tumour)
    submit(reg, s[2], outcome="nothing")
    run = merge_region(region_id=reg.pk)
    assert run.status == "needs_adjudication"
    outsider = make_user("outsider")
    make_project(outsider)
    return {**campaign, "region": reg, "run": run, "outsider": outsider}


def _body(setup: dict) -> dict:
    return {
        "decision": "redraw",
        "reason": "B outlined stroma",
        "shapes": [{"label_class": setup["tumour"].pk, "geometry": square(1210, 1010, 30)}],
    }


@pytest.mark.parametrize("who", ["expert", "manager"])
def test_experts_and_managers_decide_and_read_the_history(client, contested, who):
    url = f"/api/regions/{contested['region'].pk}/adjudication/"
    client.force_login(contested[who])
    assert client.get(url).json() == {"current": None, "history": []}
    response = client.post(url, _body(contested), content_type="application/json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["decision"] == "redraw" and data["expert"] == contested[who].pk
    assert data["based_on"] == contested["run"].pk and data["needs_review"] is False
    assert len(data["rater_scores"]) == 3
    read = client.get(url).json()
    assert read["current"]["id"] == data["id"]
    assert [h["id"] for h in read["history"]] == [data["id"]]
    assert AnnotatorReliability.objects.filter(source="gold").count() == 3


@pytest.mark.parametrize("who", ["researcher", "student", "outsider"])
def test_anyone_else_gets_404_and_changes_nothing(client, contested, who):
    user = contested["students"][0] if who == "student" else contested[who]
    client.force_login(user)
    reg = contested["region"]
    for url in (
        f"/api/regions/{reg.pk}/adjudication/",
        f"/api/regions/{reg.pk}/agreement-map.png",
        f"/adjudicate/{reg.pk}/",
        f"/projects/{contested['project'].pk}/adjudication/",
    ):
        assert client.get(url).status_code == 404, url
    response = client.post(
        f"/api/regions/{reg.pk}/adjudication/", _body(contested), content_type="application/json"
    )
    assert response.status_code == 404
    assert not Adjudication.objects.exists()
    assert not AnnotatorReliability.objects.filter(source="gold").exists()


def test_anonymous_gets_401_from_the_api(client, contested):
    reg = contested["region"]
    assert client.get(f"/api/regions/{reg.pk}/adjudication/").status_code == 401
    assert client.get(f"/api/regions/{reg.pk}/agreement-map.png").status_code == 401
    assert client.get(f"/adjudicate/{reg.pk}/").status_code == 302


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": " "}, "reason"),
        ({"decision": "approve"}, "decision"),
        ({"shapes": [{"label_class": 0, "geometry": square(1210, 1010, 30)}]}, "class"),
        ({"shapes": [{"label_class": None, "geometry": {}}]}, "shapes"),
    ],
)
def test_a_bad_decision_is_a_400_and_stores_nothing(client, contested, change, message):
    client.force_login(contested["expert"])
    response = client.post(
        f"/api/regions/{contested['region'].pk}/adjudication/",
        json.dumps({**_body(contested), **change}),
        content_type="application/json",
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not Adjudication.objects.exists()


def test_the_agreement_map_is_a_png_on_the_merge_grid(client, contested):
    client.force_login(contested["expert"])
    response = client.get(f"/api/regions/{contested['region'].pk}/agreement-map.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"].startswith("private")
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "RGBA" and image.size == (contested["run"].width, contested["run"].height)
    rgba = np.asarray(image)
    # A's square (only A marked it: 2 of 3 said background) is coloured and opaque; pixels
    # everyone left as background are transparent.
    assert rgba[20, 20, 3] == 255 and rgba[5, 5, 3] == 0
    assert rgba[20, 20, 0] > rgba[20, 20, 1]  # a split: towards red


def test_the_pages_show_the_queue_and_the_annotators_without_names(client, contested):
    client.force_login(contested["expert"])
    reg = contested["region"]
    page = client.get(f"/projects/{contested['project'].pk}/adjudication/")
    assert page.status_code == 200
    assert f'data-region="{reg.pk}"' in page.content.decode()
    page = client.get(f"/adjudicate/{reg.pk}/")
    assert page.status_code == 200
    config = page.context["adjudicate_config"]
    assert [a["label"] for a in config["annotators"]] == [
        "Annotator 1",
        "Annotator 2",
        "Annotator 3",
    ]
    assert len({a["color"] for a in config["annotators"]}) == 3
    assert not any("username" in a or "annotator" in a for a in config["annotators"])
    assert config["urls"]["agreementMap"] == f"/api/regions/{reg.pk}/agreement-map.png"


def test_the_project_may_show_annotator_names_to_the_expert(client, contested):
    project = contested["project"]
    project.show_annotator_names = True
    project.save(update_fields=["show_annotator_names"])
    client.force_login(contested["expert"])
    config = client.get(f"/adjudicate/{contested['region'].pk}/").context["adjudicate_config"]
    from annotation.models import Submission

    authors = list(
        Submission.objects.filter(region=contested["region"], status="submitted", counts=True)
        .order_by("pk")
        .values_list("annotator__username", flat=True)
    )
    assert [a["label"] for a in config["annotators"]] == authors
