"""DRF's browsable API under the site's Content-Security-Policy.

Its templates write ``style=""`` attributes (fieldsets, filter and action buttons) and an inline
``<style>`` of Pygments colours, so its HTML pages, and only those, also allow inline styles.
Its scripts are all files; the one inline ``<script>`` is a JSON data block, never run.
"""

from __future__ import annotations

from typing import Any

from rest_framework import renderers

# Replaced, not added to: next to a hash or nonce, browsers ignore 'unsafe-inline'.
BROWSABLE_API_CSP = {"style-src": ["'self'", "'unsafe-inline'"]}


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's HTML page, with the policy widened for its inline styles (django-csp's replace)."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> Any:
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_replace = BROWSABLE_API_CSP  # read by csp.middleware.CSPMiddleware
        return super().render(data, accepted_media_type, renderer_context)
