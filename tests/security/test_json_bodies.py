"""Hostile JSON bodies: too large, nested too deep, NaN and Infinity. Always a 4xx with a
reason, never a 500, and nothing written."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from tests.security.conftest import table_dump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def _targets(w: dict) -> list[tuple[str, str, str, dict]]:
    """(caller, method, url, headers): writes that take JSON, the annotation save among them."""
    assignment = f"/api/assignments/{w['assignment_a'].pk}"
    return [
        ("annotator", "put", f"{assignment}/work/", {"If-Match": '"1"'}),
        ("annotator", "post", f"{assignment}/submit/", {"If-Match": '"1"'}),
        ("manager", "patch", f"/api/projects/{w['a'].pk}/", {}),
        ("manager", "post", "/api/regions/", {}),
        ("manager", "post", f"/api/slides/{w['slide_a'].pk}/set-mpp/", {}),
        ("expert", "post", f"/api/regions/{w['region_a'].pk}/adjudication/", {}),
        ("manager", "post", f"/api/projects/{w['a'].pk}/members/", {}),
        ("manager", "post", f"/api/projects/{w['a'].pk}/seed-regions/", {}),
        ("anonymous", "post", "/api/auth/token/", {}),
    ]  # fmt: skip


def _send(client, world, caller, method, url, headers, body: bytes):
    client.logout()
    if caller != "anonymous":
        client.force_login(world["users"][caller])
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return getattr(client, method)(url, body, content_type="application/json", **extra)


def _huge_polygon_body() -> bytes:
    """One polygon of ~400k vertices: ~7 MB, past DATA_UPLOAD_MAX_MEMORY_SIZE (5 MB)."""
    ring = ",".join(f"[{300 + i % 100}.5,{300 + i // 4000}.25]" for i in range(400_000))
    geometry = f'{{"type":"Polygon","coordinates":[[{ring},[300.5,300.25]]]}}'
    return f'{{"shapes":[{{"label_class":1,"geometry":{geometry}}}],"reason":"x"}}'.encode()


def _assert_json_413(response, url: str) -> None:
    assert response.status_code == 413, (url, response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", url
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in response.json()["detail"], url


def test_bodies_over_the_memory_cap_are_413_and_change_nothing(two_projects, client):
    body = _huge_polygon_body()
    assert len(body) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    before = table_dump()
    for caller, method, url, headers in _targets(two_projects):
        response = _send(client, two_projects, caller, method, url, headers, body)
        _assert_json_413(response, url)
    assert table_dump() == before


def _label_class_json(size: int) -> bytes:
    """A label class, padded with JSON whitespace to exactly ``size`` bytes."""
    body = b'{"name": "necrosis", "color": "#00ff00", "order": 3}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_a_6_mb_label_class_is_413_as_json_or_as_a_form_and_creates_nothing(two_projects):
    """The README's promise, over real HTTP headers (token auth): a 6 MB write is a 413."""
    from rest_framework.test import APIClient

    api = APIClient(HTTP_AUTHORIZATION=f"Token {two_projects['tokens']['manager']}")
    url = f"/api/projects/{two_projects['a'].pk}/label-classes/"
    six_mb = 6 * 1024**2
    form = b"name=necrosis&color=%2300ff00&order=3&pad=" + b"x" * six_mb
    before = table_dump()
    for body, content_type in (
        (_label_class_json(six_mb), "application/json"),
        (form, "application/x-www-form-urlencoded"),
    ):
        _assert_json_413(api.post(url, body, content_type=content_type), url)
    # Multipart: no early refusal (uploads stream past the cap), Django counts its text fields.
    fields = {"name": "necrosis", "color": "#00ff00", "order": 3, "pad": "x" * six_mb}
    _assert_json_413(api.post(url, fields, format="multipart"), url)
    assert table_dump() == before


def test_a_body_of_exactly_the_cap_is_still_parsed(two_projects):
    from rest_framework.test import APIClient

    api = APIClient(HTTP_AUTHORIZATION=f"Token {two_projects['tokens']['manager']}")
    url = f"/api/projects/{two_projects['a'].pk}/label-classes/"
    body = _label_class_json(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["name"] == "necrosis"


def test_page_forms_over_the_cap_are_413_and_change_nothing(two_projects, client):
    """A url-encoded form is refused before the CSRF check reads it; a multipart form whose
    text field is over the cap (files are not counted) while Django parses it."""
    w = two_projects
    client.force_login(w["users"]["manager"])
    setup = f"/projects/{w['a'].pk}/setup"
    big = "x" * (6 * 1024**2)
    before = table_dump()
    responses = [
        client.post(f"{setup}/classes/", f"name={big}&color=%23000000&order=1",
                    content_type="application/x-www-form-urlencoded"),
        client.post(f"{setup}/guideline-images/", {"caption": big}),  # multipart
    ]  # fmt: skip
    for response in responses:
        assert response.status_code == 413, (response.status_code, response.content[:300])
        assert response["Content-Type"].startswith("text/plain")
        assert b"DATA_UPLOAD_MAX_MEMORY_SIZE" in response.content
    assert table_dump() == before


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_400_not_500(depth, two_projects, client):
    nested = ("[" * depth + "]" * depth).encode()
    in_geometry = (
        b'{"shapes":[{"label_class":1,"geometry":{"type":"Polygon","coordinates":'
        + nested
        + b"}}]}"
    )
    before = table_dump()
    for caller, method, url, headers in _targets(two_projects):
        for body in (nested, in_geometry):
            response = _send(client, two_projects, caller, method, url, headers, body)
            assert 400 <= response.status_code < 500, (url, depth, response.status_code)
    assert table_dump() == before


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_in_numbers_are_refused(token, two_projects, client):
    w = two_projects
    square = (
        '{"type":"Polygon","coordinates":[[[300,300],[TOKEN,300],[400,400],[300,400],[300,300]]]}'
    ).replace("TOKEN", token)
    cases = [
        ("manager", "post", f"/api/slides/{w['slide_a'].pk}/set-mpp/", {}, f'{{"mpp":{token}}}'),
        ("manager", "patch", f"/api/projects/{w['a'].pk}/", {}, f'{{"target_mpp":{token}}}'),
        ("manager", "patch", f"/api/projects/{w['a'].pk}/", {}, f'{{"gold_mix_rate":{token}}}'),
        (
            "annotator",
            "put",
            f"/api/assignments/{w['assignment_a'].pk}/work/",
            {"If-Match": '"1"'},
            f'{{"shapes":[{{"label_class":{w["class_a"].pk},"geometry":{square}}}]}}',
        ),
        (
            "annotator",
            "put",
            f"/api/assignments/{w['assignment_a'].pk}/work/",
            {"If-Match": '"1"'},
            f'{{"shapes":[],"time_spent_seconds":{token}}}',
        ),
        (
            "expert",
            "post",
            f"/api/regions/{w['region_a'].pk}/adjudication/",
            {},
            f'{{"decision":"redraw","reason":"r","shapes":[{{"label_class":{w["class_a"].pk},'
            f'"geometry":{square}}}]}}',
        ),
        (
            "manager",
            "post",
            "/api/regions/",
            {},
            f'{{"project":{w["a"].pk},"slide":{w["slide_a"].pk},"x":{token},"y":0,'
            '"width":64,"height":64}',
        ),
    ]
    before = table_dump()
    for caller, method, url, headers, body in cases:
        response = _send(client, w, caller, method, url, headers, body.encode())
        assert response.status_code == 400, (url, token, response.status_code, response.content)
    assert table_dump() == before
