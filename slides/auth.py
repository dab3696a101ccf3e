"""Who is asking, for the plain (non-DRF) tile views: session or API token."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed


def request_user_id(request: HttpRequest) -> int | None:
    """The authenticated user's id, from the session or an ``Authorization: Token`` header."""
    user = request.user
    if user.is_authenticated:
        return user.pk
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    if found is None:
        return None
    return found[0].pk
