"""The audit's login attacks (issue 14, finding 4), each sent again and refused.

One guard (annotation/login_guard.py) counts failures in the database for every login path: the
web pages, /admin/login/ and the token endpoint. It delays an account's attempts progressively
(429 + Retry-After), never locks it, reads X-Forwarded-For only through TRUSTED_PROXY_COUNT, and
never lets an address's failures refuse an account that has none. Password changes revoke API
tokens; reset e-mails are rate-limited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from annotation.login_guard import client_address
from annotation.models import LoginCounter
from learning.simulation.live import database_url
from tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
TOKEN_URL = "/api/auth/token/"


def _token(client: Client, username: str, password: str, **headers: str) -> HttpResponse:
    return client.post(TOKEN_URL, {"username": username, "password": password}, **headers)


def _login_state() -> str:
    """Sessions, tokens and last logins: what a refused login must leave as it was."""
    from django.contrib.sessions.models import Session

    users = list(get_user_model().objects.order_by("pk").values_list("pk", "last_login"))
    return repr((users, Session.objects.count(), list(Token.objects.values_list("key"))))


def test_admin_login_after_thirty_failures_refuses_the_right_password():
    """Audit: 30 wrong passwords on /admin/login/, then the right one, logged in."""
    make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    codes = [
        client.post("/admin/login/", {"username": "root", "password": f"no-{i}"}).status_code
        for i in range(30)
    ]
    assert codes == [200] * 10 + [429] * 20  # attempts 11-30 wait; no password is checked
    before = _login_state()
    right = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert right.status_code == 429
    assert int(right["Retry-After"]) >= 1
    assert b"Too many failed logins" in right.content
    assert _login_state() == before  # no session, no last_login (client.session would make one)


def test_delay_doubles_with_each_further_failure_and_the_right_password_then_works(settings):
    settings.LOGIN_DELAY_BASE = 0.75  # seconds; production's 15 s would make a slow test
    make_user("slow")
    client = Client()
    assert [_token(client, "slow", f"no-{i}").status_code for i in range(10)] == [400] * 10
    refused = _token(client, "slow", PASSWORD)
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    assert "Too many failed logins" in refused.json()["detail"]
    assert not Token.objects.exists()
    time.sleep(0.8)  # the first delay (0.75 s) is over: one more try, and it fails
    assert _token(client, "slow", "no-again").status_code == 400
    time.sleep(0.8)  # the 11th failure doubled the delay to 1.5 s: still refused
    assert _token(client, "slow", PASSWORD).status_code == 429
    assert not Token.objects.exists()
    time.sleep(0.75)  # past 1.5 s: the right password works; the account was never locked
    accepted = _token(client, "slow", PASSWORD)
    assert accepted.status_code == 200, accepted.content
    assert Token.objects.filter(key=accepted.json()["token"]).exists()


def test_token_endpoint_ignores_a_client_set_x_forwarded_for():
    """Audit: 40 token failures, each with a new X-Forwarded-For, got no 429."""
    make_user("tok")
    client = Client()
    codes = [
        _token(client, "tok", f"no-{i}", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
        for i in range(40)
    ]
    assert codes == [400] * 10 + [429] * 30
    assert not Token.objects.exists()


def test_x_forwarded_for_names_the_client_only_through_trusted_proxies(settings):
    settings.TRUSTED_PROXY_COUNT = 1  # one proxy appends the address it saw; REMOTE_ADDR is it
    make_user("victim")
    attacker = {"HTTP_X_FORWARDED_FOR": "203.0.113.7", "REMOTE_ADDR": "10.0.0.2"}
    client = Client()
    assert [_token(client, "victim", f"no-{i}", **attacker).status_code for i in range(10)] == [
        400
    ] * 10
    # The attacker writes another address in front of the one the proxy appends: still them.
    forged = {**attacker, "HTTP_X_FORWARDED_FOR": "198.51.100.9, 203.0.113.7"}
    assert _token(client, "victim", PASSWORD, **forged).status_code == 429
    # The real user behind the same proxy, from their own address, is not refused.
    user = {"HTTP_X_FORWARDED_FOR": "198.51.100.9", "REMOTE_ADDR": "10.0.0.2"}
    assert _token(client, "victim", PASSWORD, **user).status_code == 200


@pytest.mark.parametrize(
    ("trusted", "meta", "address"),
    [
        (0, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, "10.0.0.2"),
        (1, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 5.6.7.8"}, "5.6.7.8"),
        (2, {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 5.6.7.8"}, "1.2.3.4"),
        (1, {"REMOTE_ADDR": "10.0.0.2"}, "10.0.0.2"),
        (0, {"REMOTE_ADDR": "2001:db8::1"}, "2001:db8::/64"),
        (0, {"REMOTE_ADDR": "2001:db8::ffff:1"}, "2001:db8::/64"),
    ],
)
def test_client_address_reads_forwarded_for_only_through_trusted_proxies(
    settings, trusted, meta, address
):
    settings.TRUSTED_PROXY_COUNT = trusted
    request = RequestFactory().get("/", **meta)
    request.META.update(meta)
    assert client_address(request) == address


def _failing_process(path: str, username: str, attempts: int) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict)}
    env["LOGIN_FAILURES_MAX"] = "10"
    return subprocess.Popen(
        [sys.executable, "-m", "tests.security.login_processes", path, username, str(attempts)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_one_counter_is_shared_by_processes_and_by_every_login_path(settings):
    """Audit: with 2 workers, 13 web-login failures passed before the first 429 (each worker
    counted its own). Two processes fail 5 times each, on the web page and on the token
    endpoint, at once; the right password on /admin/login/ from a third is then refused."""
    settings.LOGIN_FAILURES_MAX = 10
    make_user("shared", is_staff=True)
    workers = [_failing_process("/login/", "shared", 5), _failing_process(TOKEN_URL, "shared", 5)]
    codes = []
    for worker in workers:
        out, err = worker.communicate(timeout=100)
        assert worker.returncode == 0, err[-3000:]
        codes.append(json.loads(out.strip().splitlines()[-1]))
    assert codes == [[200] * 5, [400] * 5]
    refused = Client().post("/admin/login/", {"username": "shared", "password": PASSWORD})
    assert refused.status_code == 429
    # Pair, account and address each counted all ten, though the processes raced.
    assert sorted(LoginCounter.objects.values_list("count", flat=True)) == [10, 10, 10]


def test_usernames_sprayed_from_one_address_never_refuse_an_account_without_failures():
    """Audit: 120 failures with 120 usernames locked a real user out from the same address."""
    make_user("alice")
    make_user("bob")
    client = Client()
    assert client.post("/login/", {"username": "bob", "password": "typo"}).status_code == 200
    codes = [
        client.post("/login/", {"username": f"nobody{i}", "password": "x"}).status_code
        for i in range(120)
    ]
    assert codes == [200] * 120
    # Alice has no failures: the address's 121 failures do not refuse her.
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    # Bob failed from this address: its limit does fall on him, for a while.
    other = Client()
    assert other.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 429


def _change_by_form(user: object, new: str) -> int:
    client = Client()
    client.force_login(user)
    form = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    return client.post("/accounts/password_change/", form).status_code


def _change_by_admin(user: object, new: str) -> int:
    client = Client()
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    form = {"password1": new, "password2": new, "usable_password": "true"}
    return client.post(f"/admin/auth/user/{user.pk}/password/", form).status_code


def _change_by_reset(user: object, new: str) -> int:
    client = Client()
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    link = client.get(f"/accounts/reset/{uid}/{default_token_generator.make_token(user)}/")
    assert link.status_code == 302  # Django swaps the token for a session and redirects
    return client.post(link["Location"], {"new_password1": new, "new_password2": new}).status_code


@pytest.mark.parametrize("change", [_change_by_form, _change_by_admin, _change_by_reset])
def test_a_password_change_revokes_the_users_api_tokens(change):
    user = make_user("changer", email="changer@example.org")
    bystander = make_user("bystander")
    key = Token.objects.create(user=user).key
    other_key = Token.objects.create(user=bystander).key
    api = Client()
    assert api.get("/api/projects/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert change(user, "a-new-Passw0rd-for-changer") == 302
    user.refresh_from_db()
    assert user.check_password("a-new-Passw0rd-for-changer")
    assert api.get("/api/projects/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    assert list(Token.objects.values_list("key", flat=True)) == [other_key]


def test_password_reset_emails_are_limited_per_address_entered_and_per_client(settings, mailoutbox):
    settings.PASSWORD_RESET_MAX = 3
    make_user("forgetful", email="forgetful@example.org")
    make_user("second", email="second@example.org")
    client = Client()
    url = "/accounts/password_reset/"
    codes = [client.post(url, {"email": "forgetful@example.org"}).status_code for _ in range(3)]
    assert codes == [302] * 3 and len(mailoutbox) == 3
    refused = client.post(url, {"email": "FORGETFUL@example.org"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert len(mailoutbox) == 3
    # Per client: 15 e-mails in all (five times the limit), here for addresses nobody has.
    codes = [client.post(url, {"email": f"x{i}@example.org"}).status_code for i in range(12)]
    assert codes == [302] * 12
    assert client.post(url, {"email": "second@example.org"}).status_code == 429
    assert len(mailoutbox) == 3
    # Another client may still ask for the second account's e-mail.
    other = Client(REMOTE_ADDR="192.0.2.44")
    assert other.post(url, {"email": "second@example.org"}).status_code == 302
    assert len(mailoutbox) == 4
