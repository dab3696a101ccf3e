"""Sessions need CSRF tokens for writes, logins are throttled, tokens can be revoked.

The audit's attacks on the login guard itself are in test_login_guard.py.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from annotation.models import LabelClass
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


@pytest.fixture
def project():
    manager = make_user("boss")
    project = make_project(manager)
    add_member(project, make_user("student"), "annotator")
    return project


def _csrf_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get("/login/")  # any page with a form sets the cookie
    assert page.status_code in (200, 302)
    return client, client.cookies["csrftoken"].value


def test_session_api_write_without_csrf_token_is_403_and_with_it_succeeds(project):
    manager = project.memberships.get(role="manager").user
    client, token = _csrf_client(manager)
    url = f"/api/projects/{project.pk}/label-classes/"
    body = json.dumps({"name": "gland", "color": "#00ff00"})
    refused = client.post(url, body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not LabelClass.objects.filter(project=project).exists()
    accepted = client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content
    assert LabelClass.objects.filter(project=project, name="gland").count() == 1


def test_session_form_post_without_csrf_token_is_403_and_with_it_succeeds(project):
    manager = project.memberships.get(role="manager").user
    client, token = _csrf_client(manager)
    url = f"/projects/{project.pk}/setup/classes/"
    form = {"name": "stroma", "color": "#0000ff", "order": 1, "shortcut": "s"}
    refused = client.post(url, form)
    assert refused.status_code == 403
    assert b"CSRF" in refused.content
    assert not LabelClass.objects.filter(project=project).exists()
    accepted = client.post(url, {**form, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert LabelClass.objects.filter(project=project, name="stroma").count() == 1


def test_token_write_needs_no_csrf_token(project):
    """A token is not sent by the browser on its own, so it is no CSRF vector."""
    manager = project.memberships.get(role="manager").user
    key = Token.objects.create(user=manager).key
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/api/projects/{project.pk}/label-classes/",
        json.dumps({"name": "fat", "color": "#ffff00"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 201


@pytest.mark.parametrize("url", ["/login/", "/accounts/login/"])
def test_web_login_is_refused_after_ten_failures_for_one_username(url):
    make_user("victim")
    make_user("bystander")
    client = Client()
    for attempt in range(10):
        wrong = client.post(url, {"username": "victim", "password": f"guess-{attempt}"})
        assert wrong.status_code == 200 and b"didn't match" in wrong.content
    refused = client.post(url, {"username": "victim", "password": PASSWORD})
    assert refused.status_code == 429
    assert b"Too many failed logins" in refused.content
    assert int(refused["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session
    # Another account from the same address is not locked by the victim's counter.
    other = client.post(url, {"username": "bystander", "password": PASSWORD})
    assert other.status_code == 302


def test_web_login_failures_count_case_insensitively_and_success_clears_them():
    make_user("alice")
    client = Client()
    for attempt in range(9):
        name = "ALICE" if attempt % 2 else "alice"
        assert client.post("/login/", {"username": name, "password": "x"}).status_code == 200
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    client.logout()
    for _ in range(9):  # the counter started again from zero
        assert client.post("/login/", {"username": "alice", "password": "x"}).status_code == 200
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_token_endpoint_is_throttled_after_ten_attempts():
    make_user("tok")
    client = Client()
    codes = [
        client.post("/api/auth/token/", {"username": "tok", "password": f"no-{i}"}).status_code
        for i in range(10)
    ]
    assert codes == [400] * 10
    refused = client.post("/api/auth/token/", {"username": "tok", "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert not Token.objects.exists()  # the right password, refused, made no token


def test_revoked_token_is_refused_and_a_new_one_differs():
    make_user("rev")
    client = Client()
    key = client.post("/api/auth/token/", {"username": "rev", "password": PASSWORD}).json()["token"]
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.get("/api/projects/", **auth).status_code == 200
    assert client.delete("/api/auth/token/", **auth).status_code == 204
    assert client.get("/api/projects/", **auth).status_code == 401
    assert client.delete("/api/auth/token/", **auth).status_code == 401
    again = client.post("/api/auth/token/", {"username": "rev", "password": PASSWORD})
    assert again.json()["token"] != key
