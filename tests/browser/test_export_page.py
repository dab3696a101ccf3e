"""The research export page in real headless Chromium (screenshot in test-output/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from learning.exports.config import ExportConfig
from learning.exports.services import export_build
from learning.models import TrainingExport
from tests.factories import PASSWORD
from tests.learning.export_helpers import export_world

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(240),
]


@pytest.fixture
def exports(settings):
    settings.TILE_PREBUILD_MAX_TILES = 0
    world = export_world(regions_per_slide=1)
    ready = TrainingExport.objects.create(
        project=world["project"], config={"patch_size": 128, "stride": 128, "seed": 1}
    )
    ready = export_build(export_id=ready.pk)
    # One still building, half way, as the worker leaves it between regions.
    TrainingExport.objects.create(
        project=world["project"],
        config=ExportConfig(split_by="case", min_agreement=0.9).as_dict(),
        status="building",
        progress=0.5,
        progress_text="2 of 4 regions written",
    )
    return {**world, "ready": ready}


def test_the_export_page_lists_exports_with_progress_and_offers_the_choices(
    live_server, exports, browser_page
):
    page, project = browser_page, exports["project"]
    page.goto(f"{live_server.url}/login/?next=/projects/{project.pk}/exports/")
    page.fill("input[name=username]", exports["researcher"].username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=export-page]")
    rows = page.eval_on_selector_all(
        "[data-testid=export-row]", "rows => rows.map(r => r.dataset.status)"
    )
    assert rows == ["building", "ready"]
    ready_row = page.locator(f"[data-export='{exports['ready'].pk}']")
    assert exports["ready"].export_hash[:16] in ready_row.inner_text()
    assert ready_row.locator("a", has_text="Download").count() == 1
    width = page.eval_on_selector(".js-bar", "bar => bar.style.width")
    assert width == "50%"
    classes = page.eval_on_selector_all(
        "input[name=class_ids]", "boxes => boxes.map(b => b.checked)"
    )
    assert classes == [True, True]
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "exports.png"), full_page=True)
    # The download link serves the archive to the researcher's browser session.
    with page.expect_download() as download:
        ready_row.locator("a", has_text="Download").click()
    assert download.value.suggested_filename.startswith(f"export-{exports['ready'].pk}-")
