"""One guard for every login path: the web pages, the admin and the token endpoint.

Every password check goes through ``django.contrib.auth.authenticate()``, so the guard is the
authentication backend (``GuardedModelBackend``, the only entry of AUTHENTICATION_BACKENDS): a
login path added later is guarded without knowing it. The counters are ``LoginCounter`` rows in
the database, shared by every web process (a per-process cache let each gunicorn worker allow
its own failures).

Three counters per login attempt:

- the account from this address: after ``LOGIN_FAILURES_MAX`` failures, the next attempt is
  refused (429 + Retry-After) for ``LOGIN_DELAY_BASE`` seconds, doubled for every further failure,
  up to ``LOGIN_DELAY_MAX``. The right password after the delay logs in: nothing locks an account.
- the account from any address: the same after ``WIDER`` times as many failures (guessers that
  rotate addresses).
- the address: past ``WIDER * LOGIN_FAILURES_MAX`` failures on any accounts, it is refused only for
  accounts it has itself failed on recently, so usernames sprayed from a shared address (the
  proxy, a campus NAT) never refuse an account that has no failures.

An attempt is counted before its password is checked (a conditional update on the count just
read) and uncounted when it succeeds, so parallel requests cannot all pass a check made before
any of them failed. A counter forgets its failures ``LOGIN_FAILURES_WINDOW`` seconds after the
last one, never while its delay runs. Password-reset e-mails are counted the same way, per e-mail
address entered and per client address (``PASSWORD_RESET_MAX`` per ``PASSWORD_RESET_WINDOW``).

Why not django-axes: it locks an identity for a cool-off once a limit is reached instead of
delaying progressively, and its lockout parameters cannot say "this address's limit falls only on
accounts it has failed on"; both are the rules this guard exists for.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from annotation.models import LoginCounter

logger = logging.getLogger(__name__)

WIDER = 5  # the account-wide and per-address limits, in multiples of the per-pair limit
_REFUSED_ATTR = "login_guard_retry_after"  # set on the HttpRequest the guard refused
_SWAP_TRIES = 20


@dataclass(frozen=True)
class Count:
    """A counter's state: events counted and when the last one was."""

    count: int
    last_at: datetime


@dataclass(frozen=True)
class Policy:
    """After ``threshold`` events, refuse for ``base`` s doubled per further event (<= ``cap``)."""

    kind: str
    threshold: int
    base: float
    cap: float
    window: float  # seconds after the last event (and the delay's end) that the count is dropped

    def delay(self, count: int) -> float:
        if count < self.threshold:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(count - self.threshold, 64))

    def live_count(self, state: Count | None, now: datetime) -> int:
        if state is None:
            return 0
        age = (now - state.last_at).total_seconds()
        return 0 if age >= max(self.window, self.delay(state.count)) else state.count

    def refused_until(self, state: Count | None, now: datetime) -> datetime | None:
        count = self.live_count(state, now)
        if state is None or count < self.threshold:
            return None
        until = state.last_at + timedelta(seconds=self.delay(count))
        return until if until > now else None


class DatabaseCounters:
    """The counters as ``LoginCounter`` rows: one store for every process."""

    def read(self, keys: list[str]) -> dict[str, Count]:
        rows = LoginCounter.objects.filter(key__in=keys).values_list("key", "count", "last_at")
        return {key: Count(count, last_at) for key, count, last_at in rows}

    def swap(self, key: str, old: Count | None, new: Count) -> bool:
        """Write ``new`` if the row still holds ``old`` (None: no row yet); False if it moved."""
        if old is None:
            try:
                with transaction.atomic():  # a savepoint: a lost insert race leaves no broken tx
                    LoginCounter.objects.create(key=key, count=new.count, last_at=new.last_at)
            except IntegrityError:
                return False
            return True
        moved = LoginCounter.objects.filter(key=key, count=old.count, last_at=old.last_at)
        return moved.update(count=new.count, last_at=new.last_at) == 1

    def delete(self, keys: list[str]) -> None:
        LoginCounter.objects.filter(key__in=keys).delete()

    def forget_before(self, cutoff: datetime) -> None:
        LoginCounter.objects.filter(last_at__lt=cutoff).delete()


COUNTERS: Any = DatabaseCounters()  # a module attribute, so a test's broken setting can swap it


class Refused(Exception):  # noqa: N818 - a refusal, not an error
    """The guard refused an attempt; ``retry_after`` is in whole seconds."""

    def __init__(self, until: datetime, now: datetime) -> None:
        super().__init__(until)
        self.retry_after = max(1, math.ceil((until - now).total_seconds()))


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies front the server.

    With n trusted proxies, the n-th X-Forwarded-For entry from the right is the address the
    outermost of them saw connect; anything left of it was written by the client. IPv6 addresses
    count by their /64, which one host usually holds whole.
    """
    address = request.META.get("REMOTE_ADDR") or ""
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if hops:
            address = hops[-min(trusted, len(hops))]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _key(kind: str, *parts: str) -> str:
    # An HMAC, so the table holds no names or addresses and nobody can precompute a row's key.
    value = "\0".join((kind, *parts))
    return salted_hmac("annotation.login_guard", value, algorithm="sha256").hexdigest()


def _bump(
    key: str, policy: Policy, now: datetime, known: Count | None, *, refuse: bool = True
) -> datetime | None:
    """Count one event on ``key``; with ``refuse``, not while it is in a delay: then return when
    that ends."""
    current = known
    for _ in range(_SWAP_TRIES):
        until = policy.refused_until(current, now) if refuse else None
        if until is not None:
            return until
        if COUNTERS.swap(key, current, Count(policy.live_count(current, now) + 1, now)):
            return None
        current = COUNTERS.read([key]).get(key)
    # Many parallel attempts on one key keep moving it: refuse this one briefly, never let it
    # through uncounted.
    return now + timedelta(seconds=1) if refuse else None


def _forget_old(now: datetime) -> None:
    horizon = max(
        settings.LOGIN_FAILURES_WINDOW, settings.LOGIN_DELAY_MAX, settings.PASSWORD_RESET_WINDOW
    )
    COUNTERS.forget_before(now - timedelta(seconds=horizon))


def _login_policies() -> tuple[Policy, Policy, Policy]:
    limit = settings.LOGIN_FAILURES_MAX
    timing = (settings.LOGIN_DELAY_BASE, settings.LOGIN_DELAY_MAX, settings.LOGIN_FAILURES_WINDOW)
    return (
        Policy("login-pair", limit, *timing),
        Policy("login-account", WIDER * limit, *timing),
        Policy("login-address", WIDER * limit, *timing),
    )


def _address_limit_applies(failures_from_address: int) -> bool:
    """An address's limit falls only on accounts it has recently failed on: usernames sprayed
    from a shared address must not refuse the people behind it who typed nothing wrong."""
    return failures_from_address > 0


@dataclass(frozen=True)
class LoginAttempt:
    """The counters of one counted login attempt."""

    pair: str
    account: str
    address: str


def login_begin(request: HttpRequest | None, username: str) -> LoginAttempt:
    """Count a login attempt before its password is checked, or raise ``Refused``."""
    now = timezone.now()
    pair_policy, account_policy, address_policy = _login_policies()
    name = username.strip().casefold()
    address = client_address(request) if request is not None else "unknown"
    attempt = LoginAttempt(
        pair=_key(pair_policy.kind, name, address),
        account=_key(account_policy.kind, name),
        address=_key(address_policy.kind, address),
    )
    counts = COUNTERS.read([attempt.pair, attempt.account, attempt.address])
    pair = counts.get(attempt.pair)
    waits = [
        pair_policy.refused_until(pair, now),
        account_policy.refused_until(counts.get(attempt.account), now),
    ]
    if _address_limit_applies(pair_policy.live_count(pair, now)):
        waits.append(address_policy.refused_until(counts.get(attempt.address), now))
    until = max((w for w in waits if w is not None), default=None)
    if until is None:  # counted now; a parallel attempt that got there first may still refuse
        until = _bump(attempt.pair, pair_policy, now, pair) or _bump(
            attempt.account, account_policy, now, counts.get(attempt.account)
        )
    if until is not None:
        refused = Refused(until, now)
        logger.warning("login refused for %s (%s s)", address, refused.retry_after)
        raise refused
    return attempt


def login_succeeded(attempt: LoginAttempt) -> None:
    COUNTERS.delete([attempt.pair, attempt.account])


def login_failed(attempt: LoginAttempt) -> None:
    """The attempt stays counted on its account; the address counts it too."""
    now = timezone.now()
    address_policy = _login_policies()[2]
    state = COUNTERS.read([attempt.address]).get(attempt.address)
    _bump(attempt.address, address_policy, now, state, refuse=False)
    _forget_old(now)


def reset_email_wait(request: HttpRequest, email: str) -> int | None:
    """Count one password-reset e-mail for ``email`` and the client; None, or seconds to wait."""
    now = timezone.now()
    limit, window = settings.PASSWORD_RESET_MAX, settings.PASSWORD_RESET_WINDOW
    per_email = Policy("reset-email", limit, window, window, window)
    per_address = Policy("reset-address", WIDER * limit, window, window, window)
    email_key = _key(per_email.kind, email.strip().casefold())
    address_key = _key(per_address.kind, client_address(request))
    counts = COUNTERS.read([email_key, address_key])
    until = per_email.refused_until(counts.get(email_key), now) or per_address.refused_until(
        counts.get(address_key), now
    )
    if until is None:
        until = _bump(email_key, per_email, now, counts.get(email_key)) or _bump(
            address_key, per_address, now, counts.get(address_key)
        )
    _forget_old(now)
    return None if until is None else Refused(until, now).retry_after


def refusal_response(request: HttpRequest, retry_after: int, what: str) -> HttpResponse:
    """429 with Retry-After: JSON under /api/, plain text for the pages."""
    message = f"Too many {what}. Try again in {retry_after} seconds."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    return response


class GuardedModelBackend(ModelBackend):
    """Django's ModelBackend behind the login guard: the only authentication backend."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            attempt = login_begin(request, str(username))
        except Refused as refused:
            # DRF hands authenticate() its own Request; the middleware sees the HttpRequest.
            http_request = getattr(request, "_request", request)
            if http_request is not None:
                setattr(http_request, _REFUSED_ATTR, refused.retry_after)
            raise PermissionDenied from None  # authenticate() stops here: no password check
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failed(attempt)
        else:
            login_succeeded(attempt)
        return user


class LoginRefusalMiddleware:
    """Answer 429 + Retry-After where the guard refused a login.

    The login form, the admin's form and the token serializer only learn that authentication
    failed; this turns their 200/400 into the refusal, on every path at once.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        retry_after = getattr(request, _REFUSED_ATTR, None)
        if retry_after is None:
            return response
        return refusal_response(request, retry_after, "failed logins for this account")
