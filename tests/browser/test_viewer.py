"""The viewer in real headless Chromium: log in, open a slide, OpenSeadragon draws it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.factories import PASSWORD, add_member, ingested_slide, make_project, make_user

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


@pytest.mark.smoke
def test_viewer_draws_the_slide_like_its_thumbnail(live_server, slides_dir, browser_page):
    manager = make_user("viewer-manager")
    student = make_user("viewer-student")
    project = make_project(manager)
    add_member(project, student, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    page = browser_page

    page.goto(f"{live_server.url}/slides/{slide.pk}/")
    page.fill("input[name=username]", "viewer-student")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#viewer .openseadragon-canvas canvas", timeout=20_000)
    page.wait_for_function("document.body.dataset.tilesLoaded === 'yes'", timeout=30_000)

    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "viewer-cmu-1-small-region.png"))
    # Where OpenSeadragon placed the whole image, in element pixels.
    rect = page.evaluate(
        """() => { const v = window.histocrowdViewer; const item = v.world.getItemAt(0);
        const size = item.getContentSize();
        const r = v.viewport.viewportToViewerElementRectangle(
            item.imageToViewportRectangle(0, 0, size.x, size.y));
        const box = document.getElementById('viewer').getBoundingClientRect();
        return {x: r.x + box.left, y: r.y + box.top, width: r.width, height: r.height}; }"""
    )
    shot = Image.open(io.BytesIO(page.screenshot(clip=rect))).convert("L")
    rendered = np.asarray(shot.resize((48, 64), Image.Resampling.BOX))
    thumb = Image.open(slide.thumbnail).convert("L").resize((48, 64), Image.Resampling.BOX)
    assert _correlation(rendered, np.asarray(thumb)) > 0.9
    # Not merely "not blank": the picture is the slide, not another one upside down.
    flipped = np.asarray(thumb)[::-1]
    assert _correlation(rendered, flipped) < _correlation(rendered, np.asarray(thumb)) - 0.2

    assert page.is_visible(".navigator")
    scale_text = page.text_content("[data-testid=scalebar]")
    assert scale_text and ("µm" in scale_text or "mm" in scale_text)


def test_library_lists_member_slides_with_thumbnails(live_server, slides_dir, browser_page):
    manager = make_user("lib-manager")
    project = make_project(manager, name="Colon biopsies")
    slide = ingested_slide(slides_dir / "hamamatsu-dapi.ndpi", project)
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "lib-manager")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(f"[data-slide-id='{slide.pk}'] img")
    page.wait_for_function(
        f"document.querySelector(\"[data-slide-id='{slide.pk}'] img\").naturalWidth > 0"
    )
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "library.png"), full_page=True)
    card = page.text_content(f"[data-slide-id='{slide.pk}']")
    assert "hamamatsu" in card and "3968 × 4864" in card and "0.228" in card
    assert "Colon biopsies" in page.text_content("main")


def test_expert_drags_a_gold_region_on_the_viewer(live_server, slides_dir, browser_page):
    from annotation.models import Assignment, Region

    manager, expert = make_user("gold-manager"), make_user("gold-expert")
    project = make_project(manager, target_mpp=1.0)
    add_member(project, expert, "expert")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    page = browser_page
    page.goto(f"{live_server.url}/slides/{slide.pk}/")
    page.fill("input[name=username]", "gold-expert")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_function("document.body.dataset.tilesLoaded === 'yes'", timeout=30_000)
    # Where level-0 points (600, 800) and (1100, 1400) are on screen.
    corners = page.evaluate(
        """() => { const v = window.histocrowdViewer;
        const box = v.container.getBoundingClientRect();
        return [[600, 800], [1100, 1400]].map(([x, y]) => {
          const p = v.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
          return [p.x + box.left, p.y + box.top]; }); }"""
    )
    page.click("#gold-draw")
    page.mouse.move(*corners[0])
    page.mouse.down()
    page.mouse.move((corners[0][0] + corners[1][0]) / 2, (corners[0][1] + corners[1][1]) / 2)
    page.mouse.move(*corners[1])
    page.screenshot(path=str(OUTPUT / "viewer-gold-region-drag.png"))
    page.mouse.up()
    page.wait_for_url("**/work/*/", timeout=15_000)
    region = Region.objects.get(project=project, origin="gold")
    # Screen rounding: within a few level-0 pixels of the dragged corners.
    assert abs(region.x - 600) <= 6 and abs(region.y - 800) <= 6
    assert abs(region.x + region.width - 1100) <= 6 and abs(region.y + region.height - 1400) <= 6
    assert Assignment.objects.filter(region=region, annotator=expert).exists()
