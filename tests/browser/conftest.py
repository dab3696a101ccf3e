"""Real headless Chromium (Debian's package) driven by Playwright's Python client.

Every page a browser test opens is held to the Content-Security-Policy: the console's CSP
violations ("Refused to execute inline script ... Content Security Policy ...") and any HTML
document answered without the header fail the test at teardown.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CSP_HEADER = "content-security-policy"
# Wanted, not a fault: ReDoc's side menu always asks its vendor's CDN for a logo; the policy
# blocks it before any request leaves the browser, and the image hides itself (config/api_docs.py).
EXPECTED_BLOCKS = ("Loading the image 'https://cdn.redoc.ly/redoc/logo-mini.svg'",)

# SECURITY_BREAK=csp,csp_docs (tests/security/BROKEN_SETTINGS.md) removes the policy, or puts
# drf-spectacular's stock docs pages (inline scripts, Google Fonts) back, to show these checks fail.
BREAKS = set(filter(None, os.environ.get("SECURITY_BREAK", "").split(",")))


@pytest.fixture(autouse=True)
def _broken_csp(monkeypatch):
    # The live server's middleware chain is built once a session: patch classes, not settings.
    if "csp" in BREAKS:
        from csp.middleware import CSPMiddleware

        monkeypatch.setattr(CSPMiddleware, "process_response", lambda self, request, resp: resp)
    if "csp_docs" in BREAKS:
        from drf_spectacular.settings import spectacular_settings

        from config.api_docs import RedocView, SwaggerView

        monkeypatch.setattr(SwaggerView, "template_name", "drf_spectacular/swagger_ui.html")
        monkeypatch.setattr(RedocView, "template_name", "drf_spectacular/redoc.html")
        monkeypatch.setattr(
            spectacular_settings, "REDOC_DIST", "https://cdn.jsdelivr.net/npm/redoc"
        )
    yield


def _wait_for_function(page, expression: str, timeout: float = 30_000, **_ignored: object) -> None:
    """``page.wait_for_function`` without eval in the page: Playwright builds its predicate with
    eval, which a policy without 'unsafe-eval' refuses (EvalError); ``page.evaluate`` goes
    through DevTools, which no page policy governs. Polls every 50 ms."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise PlaywrightTimeout(f"{expression!r} still false after {timeout:.0f} ms")
        page.wait_for_timeout(50)


@pytest.fixture
def csp_watch() -> dict[str, list]:
    """What the page's console said about the policy, and the HTML documents it loaded."""
    return {"violations": [], "documents": []}


@pytest.fixture
def browser_page(monkeypatch, csp_watch):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is required in CI (apt-get install chromium chromium-driver)")
        pytest.skip("chromium is not installed")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM work is done before it
    # starts, and Django's guard against ORM calls inside a loop would misfire on the fixtures.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("dialog", lambda dialog: dialog.accept())
        page.wait_for_function = lambda expression, **kw: _wait_for_function(page, expression, **kw)

        def on_console(message) -> None:
            text = message.text
            if "Content Security Policy" in text and not text.startswith(EXPECTED_BLOCKS):
                csp_watch["violations"].append(f"{page.url}: {text}")

        def on_response(response) -> None:
            if response.request.resource_type == "document":
                csp_watch["documents"].append(response)

        page.on("console", on_console)
        page.on("response", on_response)
        yield page
        # Headers are read here, not in the handler: a sync call inside an event handler would
        # wait on the loop that is delivering the event.
        unprotected = [
            f"{r.status} {r.url}"
            for r in csp_watch["documents"]
            if r.status < 300 and not r.header_value(CSP_HEADER)
        ]
        browser.close()
    assert not csp_watch["violations"], "CSP violations:\n" + "\n".join(csp_watch["violations"])
    assert csp_watch["documents"], "the test loaded no HTML page"
    assert not unprotected, "pages without a Content-Security-Policy header:\n" + "\n".join(
        unprotected
    )
