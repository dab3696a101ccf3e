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


def test_bodies_over_the_memory_cap_are_413_and_change_nothing(two_projects, client):
    body = _huge_polygon_body()
    assert len(body) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    before = table_dump()
    for caller, method, url, headers in _targets(two_projects):
        response = _send(client, two_projects, caller, method, url, headers, body)
        assert response.status_code in (400, 413), (url, response.status_code, response.content)
        if response.status_code == 413:
            assert b"too large" in response.content.lower() or b"exceeded" in response.content
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
