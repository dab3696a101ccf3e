"""Request bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE``: 413 with a reason, not a bare 400.

Django raises ``RequestDataTooBig`` when something reads a body over the limit. It is a
``SuspiciousOperation``, so Django answers 400 from wherever it was read: DRF's parsers, a form,
or the CSRF middleware reading ``request.POST``. Two places turn it into a 413:

- ``BodySizeLimitMiddleware`` refuses a declared ``Content-Length`` over the limit before any
  session, authentication or view work (and whatever ``DEBUG`` is). Multipart bodies pass:
  slide uploads have their own cap (``SLIDE_UPLOAD_MAX_BYTES``, streamed to disk), and Django
  applies this limit to their non-file fields while parsing.
- ``bad_request`` (``handler400``) answers 413 for a ``RequestDataTooBig`` raised anywhere else,
  such as those multipart fields.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django reads nothing of a body whose length it cannot parse


def too_large(request: HttpRequest) -> HttpResponse:
    """413: JSON under /api/ (as every API error), plain text for the pages."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    message = (
        f"Request body too large: the limit is {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE). "
        "Files go through their upload endpoints."
    )
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


class BodySizeLimitMiddleware:
    """413 for a non-multipart request whose ``Content-Length`` is over the body limit."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        multipart = request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/")
        if limit is not None and not multipart and _declared_length(request) > limit:
            return too_large(request)
        return self.get_response(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: a body over the limit is a 413; anything else Django's own 400."""
    if isinstance(exception, RequestDataTooBig):
        return too_large(request)
    return defaults.bad_request(request, exception)
