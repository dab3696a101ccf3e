"""Pages no other browser test opens, under the Content-Security-Policy: the log-in page, the
campaign set-up page, the API docs (Swagger UI and ReDoc, both from npm, no CDN), DRF's
browsable API and the admin's log-in. The ``browser_page`` fixture fails any test whose pages
report a CSP violation or come without the header; these tests also check that the pages work
(screenshots in test-output/ looked at)."""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation.models import LabelClass
from tests.factories import PASSWORD, make_project, make_user

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # tests/browser/conftest.py EXPECTED_BLOCKS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager_in(live_server, browser_page):
    manager = make_user("csp-manager")
    project = make_project(manager, name="CSP check")
    LabelClass.objects.create(project=project, name="tumour", color="#e6194b", order=1)
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "csp-manager")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page, project


def _policy(page, url: str) -> str:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    return response.header_value("content-security-policy") or ""


def _directives(policy: str) -> dict[str, str]:
    """The policy as {directive: sources}; the header's directive order is not fixed."""
    return dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())


def test_pages_send_a_policy_without_inline_script_or_other_origins(live_server, manager_in):
    page, project = manager_in
    policy = _policy(page, f"{live_server.url}/projects/{project.pk}/setup/")
    directives = _directives(policy)
    assert directives["script-src"] == "'self'"
    # Inline styles only by hash (OpenSeadragon's one <style>), never 'unsafe-inline'.
    style_src = directives["style-src"].split()
    assert style_src[0] == "'self'" and all(s.startswith("'sha256-") for s in style_src[1:])
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "http" not in policy and "unsafe" not in policy


def test_setup_page_colours_come_through_the_cssom(live_server, manager_in):
    page, project = manager_in
    page.goto(f"{live_server.url}/projects/{project.pk}/setup/")
    swatch = page.eval_on_selector(".swatch", "e => getComputedStyle(e).backgroundColor")
    assert swatch == "rgb(230, 25, 75)"  # #e6194b, set from data-style-bg
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "setup.png"), full_page=True)


def test_swagger_ui_renders_the_operations_from_local_files(live_server, manager_in):
    page, _ = manager_in
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    _policy(page, f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() > 20
    assert all(url.startswith(live_server.url) for url in requested), requested
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "api-docs-swagger.png"))


def test_redoc_renders_the_schema_from_npm_files(live_server, manager_in):
    page, _ = manager_in
    requested: list[str] = []
    failed: dict[str, str | None] = {}
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.update({request.url: request.failure}))
    policy = _policy(page, f"{live_server.url}/api/redoc/")
    assert "'nonce-" in policy and "unsafe" not in policy
    page.wait_for_selector("#redoc-container h1", timeout=30_000)
    assert "histocrowd API" in page.inner_text("#redoc-container h1")
    # Styled (the injected <style> elements carry the nonce): the side menu is a fixed column.
    assert page.locator("#redoc-container .menu-content").count() == 1
    assert page.eval_on_selector(
        "#redoc-container .menu-content", "e => getComputedStyle(e).position"
    ) in ("sticky", "fixed")
    assert any("/static/vendor/redoc/bundles/redoc.standalone.js" in url for url in requested)
    # The one foreign address, ReDoc's logo, was stopped by the policy inside the browser.
    foreign = [url for url in requested if not url.startswith((live_server.url, "blob:"))]
    assert foreign == [LOGO]
    assert failed[LOGO] == "csp"  # blocked by the policy, as Chromium names it
    assert page.locator("img[alt='redocly logo']").count() == 0
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "api-docs-redoc.png"))


def test_browsable_api_and_admin_login_pass_the_policy(live_server, manager_in):
    page, project = manager_in
    _policy(page, f"{live_server.url}/api/projects/")
    assert page.locator("text=Project List").count() >= 1
    # A detail page: its "Extra Actions" menu is one of DRF's style="" attributes.
    policy = _policy(page, f"{live_server.url}/api/projects/{project.pk}/")
    directives = _directives(policy)
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert directives["script-src"] == "'self'"
    assert page.locator("#extra-actions-menu").count() == 1
    page.context.clear_cookies()
    _policy(page, f"{live_server.url}/admin/login/")
    assert page.locator("input[name=username]").count() == 1
