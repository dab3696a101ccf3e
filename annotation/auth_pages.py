"""The web login page, throttled: repeated failures for one username from one address, or many
failures from one address, are refused for a while (429) before any password is checked.

Counters live in the default cache (Redis in production, so every web process shares them):
``LOGIN_FAILURES_MAX`` failures per (address, username) and five times as many per address,
within ``LOGIN_FAILURES_WINDOW`` seconds. A successful login clears the pair's counter.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


def _client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is the client's to forge unless a proxy rewrites it.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request: HttpRequest) -> tuple[str, str]:
    address = _client_address(request)
    username = (request.POST.get("username") or "").strip().lower()
    digest = hashlib.sha256(f"{address}\0{username}".encode()).hexdigest()[:32]
    return f"login-fail:pair:{digest}", f"login-fail:addr:{address}"


def _count(key: str) -> int:
    return int(cache.get(key) or 0)


def _bump(key: str) -> None:
    window = settings.LOGIN_FAILURES_WINDOW
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)


class ThrottledLoginView(auth_views.LoginView):
    """Django's LoginView behind a failure counter."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        pair, address = _keys(request)
        limit = settings.LOGIN_FAILURES_MAX
        if _count(pair) >= limit or _count(address) >= 5 * limit:
            logger.warning("login throttled for %s", _client_address(request))
            response = HttpResponse(
                "Too many failed logins. Wait a few minutes, then try again.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(settings.LOGIN_FAILURES_WINDOW)
            return response
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated and response.status_code == 302:
            cache.delete(pair)
        else:
            _bump(pair)
            _bump(address)
        return response
