"""The expert's adjudication in real headless Chromium: queue, layers, heat map, edit, decide.

An expert opens the top of the queue, sees three annotators' outlines and the agreement map
over the tissue, edits the machine consensus (drags one vertex) and saves it with a reason;
the decision and the annotators' re-scored reliability are then read back from the database.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from shapely.geometry import Polygon, box

from annotation.models import Adjudication, AnnotatorReliability, LabelClass, Project
from annotation.services.merge import merge_region
from tests.annotation.merge_helpers import at_slide_resolution, region, submit
from tests.factories import PASSWORD, add_member, ingested_slide, make_project, make_user

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
TOLERANCE_PX = 2.0

pytestmark = [pytest.mark.urls("tests.annotation.urls_adjudication")]


@pytest.fixture
def desk(slides_dir, settings):
    """Two contested regions of CMU-1-Small-Region, merged at the slide's own resolution."""
    settings.TILE_PREBUILD_MAX_TILES = 0  # tiles render on demand; ingest stays fast
    manager, expert = make_user("adj-manager"), make_user("adj-expert")
    students = [make_user(f"adj-s{i}") for i in range(3)]
    project = make_project(manager, name="Colon glands", redundancy_k=3, gold_mix_rate=0.0)
    add_member(project, expert, "expert")
    for student in students:
        add_member(project, student, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    at_slide_resolution(project, slide)
    Project.objects.filter(pk=project.pk).update(consensus_method="majority_vote")
    tumour = LabelClass.objects.create(project=project, name="tumour", color="#e6194b", order=1)
    LabelClass.objects.create(
        project=project, name="none", color="#ffffff", order=0, is_background=True
    )
    a, b, c = students
    # Top of the queue: A and B draw 150-px squares 40 px apart, C says "nothing"; the
    # majority (2 of 3) is their 110 x 110 overlap at (1080, 1080).
    big = region(project, slide, 1000, 1000, side=300)
    submit(big, a, [(1040, 1040, 150)], tumour)
    submit(big, b, [(1080, 1080, 150)], tumour)
    submit(big, c, outcome="nothing")
    # Lower in the queue: the same disagreement on 40-px squares (less contested area).
    small = region(project, slide, 1400, 1000, side=300)
    submit(small, a, [(1420, 1020, 40)], tumour)
    submit(small, b, [(1430, 1030, 40)], tumour)
    submit(small, c, outcome="nothing")
    runs = [merge_region(region_id=r.pk) for r in (big, small)]
    assert [r.status for r in runs] == ["needs_adjudication", "needs_adjudication"]
    return {
        "project": project,
        "expert": expert,
        "students": students,
        "big": big,
        "small": small,
        "run": runs[0],
        "tumour": tumour,
    }


def _screen(page, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Page coordinates of level-0 image points, as OpenSeadragon places them now."""
    return [
        tuple(p)
        for p in page.evaluate(
            """(points) => { const v = window.histocrowdViewer;
        const box = v.element.getBoundingClientRect();
        return points.map(([x, y]) => {
          const p = v.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
          return [p.x + box.left, p.y + box.top]; }); }""",
            [list(p) for p in points],
        )
    ]


def _dice(a: Polygon, b: Polygon) -> float:
    return 2 * a.intersection(b).area / (a.area + b.area)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_expert_edits_the_consensus_of_the_top_region_and_decides(live_server, desk, browser_page):
    page, project, big = browser_page, desk["project"], desk["big"]
    OUTPUT.mkdir(exist_ok=True)
    page.goto(f"{live_server.url}/login/?next=/projects/{project.pk}/adjudication/")
    page.fill("input[name=username]", "adj-expert")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    # The queue, most disagreement first; open its top.
    page.wait_for_selector("[data-testid=adjudication-queue]")
    rows = page.locator("[data-testid=queue-row]")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-region") == str(big.pk)
    page.screenshot(path=str(OUTPUT / "adjudication-queue.png"), full_page=True)
    rows.nth(0).locator("a").click()

    page.wait_for_selector("[data-testid=adjudicate]")
    page.wait_for_function("document.body.dataset.viewerOpen === 'yes'", timeout=20_000)
    page.wait_for_function("document.body.dataset.tilesLoaded === 'yes'", timeout=30_000)
    page.wait_for_function("document.body.dataset.heatmapLoaded === 'yes'", timeout=10_000)

    # Three annotators' outlines in three colours (C said "nothing": an empty layer), the
    # consensus outline, and the heat map decoded at the merge grid's size.
    outlines = page.locator("[data-testid=annotator-outline]")
    assert outlines.count() == 3
    colours = {outlines.nth(i).get_attribute("stroke") for i in range(3)}
    assert len(colours) == 3
    assert [outlines.nth(i).locator("path").count() for i in range(3)] == [1, 1, 0]
    assert page.locator("[data-testid=annotator-toggle]").count() == 3
    assert page.locator("[data-testid=consensus-outline] path").count() == 1
    heat = page.locator("[data-testid=heatmap]")
    assert heat.get_attribute("href").endswith(f"/api/regions/{big.pk}/agreement-map.png")
    assert heat.get_attribute("data-natural-width") == str(desk["run"].width)
    assert heat.bounding_box()["width"] > 100  # laid over the region on screen
    assert "adj-s0" not in page.content()  # annotators' names stay hidden
    page.screenshot(path=str(OUTPUT / "adjudicate-layers.png"))

    # A toggle hides one annotator's outlines, and brings them back.
    second = page.locator("[data-testid=annotator-toggle]").nth(1)
    second.uncheck()
    assert not outlines.nth(1).is_visible()
    second.check()
    assert outlines.nth(1).locator("path").is_visible()

    # Edit: the consensus square comes into the editor; select it and drag its top-left
    # corner from (1080, 1080) onto A's corner (1040, 1040).
    page.click("#adj-edit")
    assert page.evaluate("window.histocrowdAdjudicate.editor.shapes.length") == 1
    page.mouse.click(*_screen(page, [(1135, 1135)])[0])
    page.wait_for_selector(".ws-handle.vertex")
    assert page.locator(".ws-handle.vertex").count() == 4
    start, end = _screen(page, [(1080, 1080), (1040, 1040)])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    page.screenshot(path=str(OUTPUT / "adjudicate-edited.png"))

    page.fill("#adj-reason", "A's outline follows the gland border; B cut it short")
    page.click("[data-testid=save-decision]")
    page.wait_for_function("document.body.dataset.decisionSaved === 'edit'", timeout=10_000)
    assert "Decision saved" in page.text_content("#adj-notice")
    page.screenshot(path=str(OUTPUT / "adjudicate-saved.png"))

    # The stored decision: the edited quadrilateral, by the expert, with the reason.
    decision = Adjudication.objects.get(region=big)
    assert decision.decision == "edit" and decision.expert_id == desk["expert"].pk
    assert decision.reason.startswith("A's outline") and decision.based_on_id == desk["run"].pk
    (shape,) = decision.shapes
    assert shape["label_class"] == desk["tumour"].pk
    ring = shape["geometry"]["coordinates"][0]
    assert len(ring) == 5
    wanted = [(1040, 1040), (1190, 1080), (1190, 1190), (1080, 1190)]
    for point in wanted:
        assert min(math.dist(point, v) for v in ring) <= TOLERANCE_PX, (point, ring)

    # Re-scored against it: A closest, B next, C (nothing) zero; evidence in "gold".
    a, b, c = desk["students"]
    answer = Polygon(ring)
    expected = {
        a.pk: _dice(answer, box(1040, 1040, 1190, 1190)),
        b.pk: _dice(answer, box(1080, 1080, 1230, 1230)),
        c.pk: 0.0,
    }
    scores = {s["annotator"]: s["dice"] for s in decision.rater_scores}
    assert scores.keys() == expected.keys()
    for annotator, value in expected.items():
        assert scores[annotator] == pytest.approx(value, abs=0.02)
    assert scores[a.pk] > scores[b.pk] > scores[c.pk] == 0.0
    rows = {
        r.annotator_id: r
        for r in AnnotatorReliability.objects.filter(project=project, source="gold")
    }
    assert set(rows) == {a.pk, b.pk, c.pk}
    assert all(r.n_regions == 1 and f"adjudication:{big.pk}" in r.evidence for r in rows.values())
    assert rows[a.pk].sensitivity == pytest.approx(1.0, abs=0.01)  # A covers the whole answer
    assert rows[c.pk].sensitivity == 0.0
    assert rows[b.pk].sensitivity < rows[a.pk].sensitivity

    # Back in the queue, the decided region is gone.
    page.goto(f"{live_server.url}/projects/{project.pk}/adjudication/")
    rows_after = page.locator("[data-testid=queue-row]")
    assert rows_after.count() == 1
    assert rows_after.nth(0).get_attribute("data-region") == str(desk["small"].pk)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_expert_redraws_one_region_and_accepts_another(live_server, desk, browser_page):
    page, small, big = browser_page, desk["small"], desk["big"]
    page.goto(f"{live_server.url}/login/?next=/adjudicate/{small.pk}/")
    page.fill("input[name=username]", "adj-expert")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_function("document.body.dataset.tilesLoaded === 'yes'", timeout=30_000)

    # Redraw: an empty editor and the polygon tool; four clicks, closed on the first point.
    page.click("#adj-redraw")
    assert page.evaluate("window.histocrowdAdjudicate.editor.shapes.length") == 0
    points = [(1450, 1050), (1600, 1060), (1590, 1200), (1460, 1190)]
    for x, y in _screen(page, points):
        page.mouse.click(x, y)
        page.wait_for_timeout(60)
    page.mouse.click(*_screen(page, points[:1])[0])
    assert page.evaluate("window.histocrowdAdjudicate.editor.shapes.length") == 1
    # No reason, no decision.
    page.click("[data-testid=save-decision]")
    assert "needs a reason" in page.text_content("#adj-notice")
    assert not Adjudication.objects.exists()
    page.fill("#adj-reason", "Neither outline is the gland; this is")
    page.click("[data-testid=save-decision]")
    page.wait_for_function("document.body.dataset.decisionSaved === 'redraw'", timeout=10_000)
    page.screenshot(path=str(OUTPUT / "adjudicate-redrawn.png"))
    decision = Adjudication.objects.get(region=small)
    ring = decision.shapes[0]["geometry"]["coordinates"][0]
    assert len(ring) == 5
    for point in points:
        assert min(math.dist(point, v) for v in ring) <= TOLERANCE_PX, (point, ring)

    # Accept: the consensus polygons as they are.
    page.goto(f"{live_server.url}/adjudicate/{big.pk}/")
    page.wait_for_function("document.body.dataset.viewerOpen === 'yes'", timeout=20_000)
    page.fill("#adj-reason", "The overlap is the gland")
    page.click("#adj-accept")
    page.wait_for_function("document.body.dataset.decisionSaved === 'accept'", timeout=10_000)
    accepted = Adjudication.objects.get(region=big)
    assert accepted.decision == "accept" and accepted.shapes == desk["run"].polygons
    page.goto(f"{live_server.url}/projects/{desk['project'].pk}/adjudication/")
    page.wait_for_selector("[data-testid=queue-empty]")
