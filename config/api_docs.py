"""The API docs pages (Swagger UI, ReDoc) under the site's Content-Security-Policy.

drf-spectacular's stock pages carry inline ``<script>`` and ``<style>`` blocks and ReDoc's
Google Fonts; ``templates/api_docs/`` has both pages with their code in static files. Swagger
UI's start-up script comes from drf-spectacular's split view (a second, same-origin request).
Both draw their icons from ``data:`` images, allowed on these two pages only. ReDoc (npm's
redoc, served from /static/ like Swagger UI) needs two more widenings, on its own page only:
its styled-components inject ``<style>`` elements, allowed by the page's nonce, which the page
hands to ``Redoc.init``; and its search index runs in a worker made from a ``blob:`` URL.
Its side menu always asks cdn.redoc.ly for a logo: the policy blocks that (the image hides
itself), and the browser tests expect exactly that one report there.
"""

from __future__ import annotations

from csp.constants import NONCE
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

# redoc 2.5.4's bundle also injects perfect-scrollbar's stylesheet as it loads, before any nonce
# is known: that text (and the empty <style> it starts as) is allowed by its hash. Another
# redoc version changes the text; the browser test then reports the violation and its hash.
_REDOC_SCROLLBAR_CSS = "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"
_EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
SWAGGER_CSP = {"img-src": ["data:"]}
REDOC_CSP = {
    "style-src": [NONCE, _REDOC_SCROLLBAR_CSS, _EMPTY_STYLE],
    "worker-src": ["'self'", "blob:"],
    "img-src": ["data:"],
}


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI: the page, and with ``?script`` its start-up script."""

    template_name = "api_docs/swagger_ui.html"


class RedocView(SpectacularRedocView):
    """ReDoc, started by static/js/api_redoc.js."""

    template_name = "api_docs/redoc.html"


swagger_view = csp_update(SWAGGER_CSP)(SwaggerView.as_view(url_name="schema"))
redoc_view = csp_update(REDOC_CSP)(RedocView.as_view(url_name="schema"))
