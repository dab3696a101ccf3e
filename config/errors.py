"""Answers for requests that reach no view, and for ids no row can have.

A URL under /api/ that matches no route answers JSON (the API's schema documents a JSON 404
everywhere), not Django's HTML page. A path id that is not a positive 64-bit integer (``-3``,
``abc`` where a router accepts any segment, or 40 digits, which SQLite cannot even bind) names
no row: 404 before any view or query runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

_MAX_ID = 2**63 - 1
_ID_TEXT = re.compile(r"[0-9]{1,19}")


def _is_id_name(name: str) -> bool:
    return name in ("pk", "id") or name.endswith(("_pk", "_id"))


def _valid_id(value: object) -> bool:
    if isinstance(value, int):
        return 0 < value <= _MAX_ID
    text = str(value)
    return bool(_ID_TEXT.fullmatch(text)) and 0 < int(text) <= _MAX_ID


class IdRangeMiddleware:
    """404 for a request whose URL id (``pk``, ``id``, ``*_pk``, ``*_id``) names no row."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict
    ) -> HttpResponse | None:
        for name, value in kwargs.items():
            if _is_id_name(name) and not _valid_id(value):
                raise Http404("No such object.")
        return None


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
