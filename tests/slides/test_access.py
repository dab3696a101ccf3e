"""Who may see what of a slide: outsiders 404 everywhere, label/macro images for managers only."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from rest_framework.authtoken.models import Token

from slides.models import SlideAccess
from tests.factories import add_member, ingested_slide, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(slides_dir):
    manager, annotator, outsider = make_user("m"), make_user("a"), make_user("o")
    project = make_project(manager)
    add_member(project, annotator, "annotator")
    make_project(outsider)  # the outsider manages a project of their own
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    return {"manager": manager, "annotator": annotator, "outsider": outsider, "slide": slide}


def _urls(slide_id: int) -> dict[str, str]:
    return {
        "detail": f"/api/slides/{slide_id}/",
        "dzi": f"/dz/{slide_id}.dzi",
        "tile": f"/dz/{slide_id}_files/10/0_0.jpeg",
        "thumbnail": f"/api/slides/{slide_id}/thumbnail/",
        "crop": f"/api/slides/{slide_id}/crop/?x=0&y=0&width=100&height=100",
        "label": f"/api/slides/{slide_id}/associated/label/",
        "macro": f"/api/slides/{slide_id}/associated/macro/",
        "viewer": f"/slides/{slide_id}/",
        "access-log": f"/api/slides/{slide_id}/access-log/",
    }


@pytest.mark.parametrize("what", sorted(_urls(0)))
@pytest.mark.smoke
def test_non_member_gets_404_on_every_slide_url(setup, client, what):
    client.force_login(setup["outsider"])
    response = client.get(_urls(setup["slide"].pk)[what])
    assert response.status_code == 404
    assert not SlideAccess.objects.filter(user=setup["outsider"]).exists()


@pytest.mark.parametrize("what", ["detail", "dzi", "tile", "thumbnail", "crop", "label"])
def test_anonymous_gets_no_slide_content(setup, client, what):
    response = client.get(_urls(setup["slide"].pk)[what])
    assert response.status_code in (401, 403, 404)


@pytest.mark.parametrize("what", ["label", "macro", "access-log"])
@pytest.mark.smoke
def test_annotator_gets_404_on_label_macro_and_access_log(setup, client, what):
    client.force_login(setup["annotator"])
    assert client.get(_urls(setup["slide"].pk)[what]).status_code == 404


@pytest.mark.parametrize("what", ["detail", "dzi", "tile", "thumbnail", "crop", "viewer"])
def test_annotator_member_reads_slide_content(setup, client, what):
    client.force_login(setup["annotator"])
    assert client.get(_urls(setup["slide"].pk)[what]).status_code == 200


def test_manager_reads_label_and_macro_images(setup, client):
    client.force_login(setup["manager"])
    for name in ("label", "macro"):
        response = client.get(_urls(setup["slide"].pk)[name])
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        Image.open(io.BytesIO(response.content)).load()
        assert "no-store" in response["Cache-Control"]


def test_server_path_is_shown_to_managers_only(setup, client):
    url = _urls(setup["slide"].pk)["detail"]
    client.force_login(setup["annotator"])
    assert client.get(url).json()["path"] is None
    client.force_login(setup["manager"])
    assert client.get(url).json()["path"].endswith("cmu-1-small-region.svs")


def test_token_authenticates_tiles_and_api(setup, client):
    token = Token.objects.create(user=setup["annotator"])
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    assert client.get(_urls(setup["slide"].pk)["tile"], **headers).status_code == 200
    assert client.get(_urls(setup["slide"].pk)["detail"], **headers).status_code == 200
    outsider_token = Token.objects.create(user=setup["outsider"])
    assert (
        client.get(
            _urls(setup["slide"].pk)["tile"], HTTP_AUTHORIZATION=f"Token {outsider_token.key}"
        ).status_code
        == 404
    )
    assert (
        client.get(
            _urls(setup["slide"].pk)["tile"], HTTP_AUTHORIZATION="Token not-a-real-token"
        ).status_code
        == 404
    )


def test_slide_list_shows_only_member_projects(setup, client, slides_dir):
    other_slide = ingested_slide(slides_dir / "hamamatsu-dapi.ndpi")
    other_project = make_project(setup["outsider"])
    other_project.slides.add(other_slide)
    client.force_login(setup["annotator"])
    ids = {s["id"] for s in client.get("/api/slides/").json()["results"]}
    assert ids == {setup["slide"].pk}


def test_removed_member_loses_tile_access_at_once(setup, client):
    from annotation.models import Membership
    from annotation.services import membership_remove

    client.force_login(setup["annotator"])
    url = _urls(setup["slide"].pk)["tile"]
    assert client.get(url).status_code == 200
    membership_remove(
        membership=Membership.objects.get(user=setup["annotator"], project__slides=setup["slide"])
    )
    assert client.get(url).status_code == 404


def test_opening_a_slide_is_recorded_once_per_user_and_day(setup, client):
    client.force_login(setup["annotator"])
    slide_id = setup["slide"].pk
    for what in ("viewer", "dzi", "tile", "tile", "crop"):
        client.get(_urls(slide_id)[what])
    rows = SlideAccess.objects.filter(user=setup["annotator"], slide_id=slide_id)
    assert rows.count() == 1
    client.force_login(setup["manager"])
    log = client.get(_urls(slide_id)["access-log"]).json()["results"]
    assert [r["username"] for r in log] == ["a"]


def test_mpp_set_by_manager_only(slides_dir, client):
    manager, annotator = make_user(), make_user()
    project = make_project(manager)
    add_member(project, annotator, "annotator")
    # The TCGA slide's file carries no mpp (data README).
    slide = ingested_slide(slides_dir / "tcga-cr-7395-01a-01-ts1.svs", project)
    assert slide.mpp is None
    url = f"/api/slides/{slide.pk}/set-mpp/"
    client.force_login(annotator)
    assert client.post(url, {"mpp": 0.25}, content_type="application/json").status_code == 404
    slide.refresh_from_db()
    assert slide.mpp is None
    client.force_login(manager)
    assert client.post(url, {"mpp": "NaN"}, content_type="application/json").status_code == 400
    assert client.post(url, {"mpp": -1}, content_type="application/json").status_code == 400
    response = client.post(url, {"mpp": 0.25}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["mpp"] == 0.25 and response.json()["mpp_source"] == "manual"
