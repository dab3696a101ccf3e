"""The Content-Security-Policy: sent with every page, and nothing in templates/ or static/js/
that it would refuse (inline scripts, on*= handlers, javascript: URLs, style="" attributes,
<style> blocks). tests/browser/ checks the same in Chromium on every page it opens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

BASE = Path(django_settings.BASE_DIR)
_DJANGO_COMMENT = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.S)
TEMPLATE_REFUSALS = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "on*= handler": re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "style attribute": re.compile(r"<[^>]*\sstyle\s*=", re.I),
    "<style> block": re.compile(r"<style\b", re.I),
}
SCRIPT_REFUSALS = {
    "style attribute in markup": re.compile(r"""style=["'\\]"""),
    "setAttribute('style')": re.compile(r"""setAttribute\(\s*["']style""", re.I),
    "on*= handler in markup": re.compile(r"""<[^>]*\son[a-z]+=""", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "eval": re.compile(r"\beval\(|new Function\("),
}


def _findings(root: Path, pattern: str, refusals: dict[str, re.Pattern]) -> list[str]:
    found = []
    for path in sorted(root.rglob(pattern)):
        text = _DJANGO_COMMENT.sub("", path.read_text())
        for name, regex in refusals.items():
            found += [
                f"{path.relative_to(BASE)}: {name}: {m.group(0)[:80]}" for m in regex.finditer(text)
            ]
    return found


def test_templates_and_scripts_hold_nothing_the_policy_refuses():
    assert _findings(BASE / "templates", "*.html", TEMPLATE_REFUSALS) == []
    assert _findings(BASE / "static" / "js", "*.js", SCRIPT_REFUSALS) == []


def _directives(policy: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())


@pytest.mark.django_db
def test_every_kind_of_page_sends_the_policy(two_projects, client):
    w = two_projects
    anonymous = client.get(reverse("login"))
    client.force_login(w["users"]["manager"])
    pages = {
        "login": anonymous,
        "library": client.get(reverse("slides:library")),
        "setup": client.get(f"/projects/{w['a'].pk}/setup/"),
        "swagger": client.get("/api/docs/"),
        "redoc": client.get("/api/redoc/"),
        "browsable API": client.get("/api/projects/", HTTP_ACCEPT="text/html"),
        "413": client.post("/api/regions/", b"{}" + b" " * (6 * 1024**2), "application/json"),
        "404": client.get("/api/no-such-thing/"),
    }
    for name, response in pages.items():
        assert "Content-Security-Policy" in response, name
        directives = _directives(response["Content-Security-Policy"])
        assert directives["script-src"] == "'self'", name
        assert directives["object-src"] == "'none'", name
        assert "http" not in response["Content-Security-Policy"], name
    # Inline styles only by hash (OpenSeadragon's one <style>), never 'unsafe-inline'.
    style_src = _directives(pages["setup"]["Content-Security-Policy"])["style-src"].split()
    assert style_src[0] == "'self'" and all(s.startswith("'sha256-") for s in style_src[1:])
    assert "unsafe" not in pages["setup"]["Content-Security-Policy"]
    # ReDoc's page: its nonce in the header is the one handed to Redoc.init, and ReDoc comes
    # from npm's package under /static/, not a CDN.
    redoc = pages["redoc"]
    nonce = re.search(
        r"'nonce-([^']+)'", _directives(redoc["Content-Security-Policy"])["style-src"]
    )
    assert nonce and f'data-nonce="{nonce.group(1)}"'.encode() in redoc.content
    assert b"/static/vendor/redoc/bundles/redoc.standalone.js" in redoc.content
    assert b"cdn." not in redoc.content and b"googleapis" not in redoc.content
