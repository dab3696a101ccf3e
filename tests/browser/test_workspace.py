"""The annotator workspace in real headless Chromium: draw, cut holes, undo, submit.

Points are chosen in level-0 pixels inside the region, turned into screen positions by
OpenSeadragon itself, clicked, and then read back from the database: the stored geometry must
land on the chosen points (within the rounding of a screen pixel).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from annotation.models import (
    AssignmentStatus,
    LabelClass,
    Region,
    Submission,
    SubmissionStatus,
)
from annotation.services.regions import regions_seed
from tests.factories import PASSWORD, add_member, ingested_slide, make_project, make_user

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
TOLERANCE_PX = 2.0


@pytest.fixture
def desk(slides_dir):
    """One student, one tissue region of CMU-1-Small-Region (k = 1), three classes."""
    manager, student = make_user("ws-manager"), make_user("ws-student")
    project = make_project(
        manager,
        name="Colon glands",
        target_mpp=1.0,
        region_size=256,
        redundancy_k=1,
        gold_mix_rate=0.0,
        guidelines="Outline every tumour gland inside the yellow frame.\n\n"
        "Stroma: the connective tissue between glands.",
    )
    add_member(project, student, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    tumour = LabelClass.objects.create(project=project, name="tumour", color="#e6194b", order=1)
    stroma = LabelClass.objects.create(project=project, name="stroma", color="#3cb44b", order=2)
    LabelClass.objects.create(
        project=project, name="none", color="#ffffff", order=0, is_background=True
    )
    (region,) = regions_seed(project=project, per_slide=1, seed=3, created_by=manager)
    return {
        "project": project,
        "slide": slide,
        "student": student,
        "region": region,
        "tumour": tumour,
        "stroma": stroma,
    }


def _log_in(page, base: str, next_path: str, username: str = "ws-student") -> None:
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _wait_for_workspace(page) -> None:
    page.wait_for_selector("[data-testid=workspace]", timeout=20_000)
    page.wait_for_function("document.body.dataset.workLoaded === 'yes'", timeout=20_000)
    page.wait_for_function("document.body.dataset.viewerOpen === 'yes'", timeout=20_000)
    page.wait_for_function("document.body.dataset.tilesLoaded === 'yes'", timeout=30_000)


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


def _click_points(page, points: list[tuple[float, float]]) -> None:
    for x, y in _screen(page, points):
        page.mouse.click(x, y)
        page.wait_for_timeout(60)


def _wait_saved(page) -> None:
    page.wait_for_function(
        "document.querySelector('[data-testid=save-state]').dataset.state === 'saved'",
        timeout=10_000,
    )


def _square(x: float, y: float, side: float) -> list[tuple[float, float]]:
    return [(x, y), (x + side, y), (x + side, y + side), (x, y + side)]


def _ring_area(ring: list[list[float]]) -> float:
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:], strict=False))) / 2


def _assert_ring_on_points(ring: list[list[float]], points: list[tuple[float, float]]) -> None:
    """A closed GeoJSON ring whose vertices are the points, in any start and orientation."""
    assert ring[0] == ring[-1]
    vertices = ring[:-1]
    assert len(vertices) == len(points)
    for px, py in points:
        nearest = min(math.dist((px, py), v) for v in vertices)
        assert nearest <= TOLERANCE_PX, f"no stored vertex near ({px}, {py}): {vertices}"


def _draft(region: Region, student: object) -> Submission:
    return Submission.objects.prefetch_related("shapes").get(region=region, annotator=student)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_student_draws_a_polygon_by_clicks_and_submits_it(live_server, desk, browser_page):
    page, region, project = browser_page, desk["region"], desk["project"]
    OUTPUT.mkdir(exist_ok=True)
    _log_in(page, live_server.url, f"/projects/{project.pk}/my-work/")
    page.wait_for_selector("[data-testid=my-work]")
    assert page.text_content("[data-testid=active-count]").strip() == "0"
    assert "project dashboard" in page.text_content("#agreement")
    page.click("#next-region")
    _wait_for_workspace(page)

    # The region is framed with context: all of it on screen, and not much more than 1.5x.
    frame = page.evaluate(
        """() => { const v = window.histocrowdViewer; const b = v.viewport.getBounds(true);
        const r = v.world.getItemAt(0).viewportToImageRectangle(b);
        return {x: r.x, y: r.y, width: r.width, height: r.height}; }"""
    )
    assert frame["x"] <= region.x and frame["y"] <= region.y
    assert frame["x"] + frame["width"] >= region.x + region.width
    assert frame["y"] + frame["height"] >= region.y + region.height
    assert min(frame["width"] / region.width, frame["height"] / region.height) < 1.9
    assert page.is_visible("[data-testid=region-outline]")

    # Guidelines one click away.
    page.click("#ws-guidelines-open")
    assert "tumour gland" in page.text_content("#ws-guidelines")
    page.screenshot(path=str(OUTPUT / "workspace-guidelines.png"))
    page.click("#ws-guidelines button[value=close]")

    x0, y0, w = region.x, region.y, region.width
    points = [
        (x0 + 0.2 * w, y0 + 0.25 * w),
        (x0 + 0.7 * w, y0 + 0.2 * w),
        (x0 + 0.8 * w, y0 + 0.7 * w),
        (x0 + 0.35 * w, y0 + 0.8 * w),
        (x0 + 0.15 * w, y0 + 0.55 * w),
    ]
    page.click(f"[data-class-id='{desk['stroma'].pk}']")
    page.keyboard.press("p")
    _click_points(page, points)
    assert page.evaluate("document.body.dataset.drawingPoints") == "5"
    page.screenshot(path=str(OUTPUT / "workspace-drawing.png"))
    first = _screen(page, points[:1])[0]
    page.mouse.click(*first)  # on the first vertex: closes the ring
    page.wait_for_selector("#ws-shapes li")
    assert "stroma" in page.text_content("#ws-shapes")
    _wait_saved(page)
    page.keyboard.press("v")
    page.mouse.click(*_screen(page, [(x0 + 0.45 * w, y0 + 0.5 * w)])[0])  # select it
    page.screenshot(path=str(OUTPUT / "workspace-polygon.png"))

    page.click("#ws-submit")
    page.wait_for_function("document.body.dataset.submission === 'submitted'", timeout=10_000)
    assert "Submitted" in page.text_content("#ws-final")
    page.screenshot(path=str(OUTPUT / "workspace-submitted.png"))

    submission = _draft(region, desk["student"])
    assert submission.status == SubmissionStatus.SUBMITTED
    assert submission.outcome == "shapes"
    assert submission.shown == {"prediction_overlay": False}
    assert submission.time_spent_seconds > 0
    assert submission.assignment.status == AssignmentStatus.SUBMITTED
    (shape,) = submission.shapes.all()
    assert shape.label_class_id == desk["stroma"].pk
    assert shape.geometry["type"] == "Polygon"
    assert len(shape.geometry["coordinates"]) == 1
    _assert_ring_on_points(shape.geometry["coordinates"][0], points)

    # Next region: the only region is done (k = 1), so "my work" says nothing is left.
    page.click("#ws-next")
    page.wait_for_selector("[data-testid=nothing-left]")
    assert page.text_content("[data-testid=submitted-count]").strip() == "1"
    page.screenshot(path=str(OUTPUT / "my-work.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_ring_drawn_in_hole_mode_becomes_an_interior_ring(live_server, desk, browser_page):
    page, region, project = browser_page, desk["region"], desk["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/work/next/")
    _wait_for_workspace(page)
    x0, y0, w = region.x, region.y, region.width
    outer = _square(x0 + 0.1 * w, y0 + 0.1 * w, 0.7 * w)
    hole = _square(x0 + 0.3 * w, y0 + 0.3 * w, 0.3 * w)

    page.keyboard.press("p")
    _click_points(page, outer)
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-shapes li")
    page.keyboard.press("h")
    _click_points(page, hole)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#ws-shapes').textContent.includes('1 hole')")
    _wait_saved(page)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "workspace-hole.png"))

    (shape,) = _draft(region, desk["student"]).shapes.all()
    assert shape.label_class_id == desk["tumour"].pk  # the first drawable class by order
    assert shape.geometry["type"] == "Polygon"
    assert len(shape.geometry["coordinates"]) == 2
    stored_outer, stored_hole = shape.geometry["coordinates"]
    _assert_ring_on_points(stored_outer, outer)
    _assert_ring_on_points(stored_hole, hole)
    hole_side = 0.3 * w
    assert _ring_area(stored_hole) == pytest.approx(hole_side**2, rel=0.03)
    assert shape.area == pytest.approx(_ring_area(stored_outer) - _ring_area(stored_hole))
    assert shape.area == pytest.approx((0.7 * w) ** 2 - hole_side**2, rel=0.03)

    # A hole drawn outside every shape is refused, and nothing is saved for it.
    page.keyboard.press("h")
    _click_points(page, _square(x0 + 0.85 * w, y0 + 0.85 * w, 0.1 * w))
    page.keyboard.press("Enter")
    assert "inside a shape" in page.text_content("#ws-notice")
    assert len(_draft(region, desk["student"]).shapes.get().geometry["coordinates"]) == 2

    # Freehand: press, drag, let go; the traced outline closes itself.
    page.keyboard.press("2")
    page.keyboard.press("f")
    trace = [
        (x0 + 0.85 * w, y0 + 0.15 * w),
        (x0 + 0.95 * w, y0 + 0.2 * w),
        (x0 + 0.95 * w, y0 + 0.45 * w),
        (x0 + 0.85 * w, y0 + 0.5 * w),
    ]
    screen = _screen(page, trace)
    page.mouse.move(*screen[0])
    page.mouse.down()
    for point in screen[1:]:
        page.mouse.move(*point, steps=8)
    page.mouse.up()
    page.wait_for_function("document.querySelectorAll('#ws-shapes li').length === 2")
    _wait_saved(page)
    traced = _draft(region, desk["student"]).shapes.get(label_class=desk["stroma"])
    assert traced.vertex_count > 10  # sampled along the drag, not just the corners
    assert traced.area == pytest.approx(0.1 * w * (0.35 + 0.25) / 2 * w, rel=0.05)  # trapezoid


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_undo_removes_the_last_vertex_then_the_last_shape(live_server, desk, browser_page):
    page, region, project = browser_page, desk["region"], desk["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/work/next/")
    _wait_for_workspace(page)
    x0, y0, w = region.x, region.y, region.width
    triangle = [
        (x0 + 0.2 * w, y0 + 0.2 * w),
        (x0 + 0.8 * w, y0 + 0.3 * w),
        (x0 + 0.4 * w, y0 + 0.8 * w),
        (x0 + 0.1 * w, y0 + 0.6 * w),
    ]

    page.keyboard.press("p")
    _click_points(page, triangle)
    assert page.locator("[data-testid=draft-vertex], [data-testid=draft-first-vertex]").count() == 4
    page.keyboard.press("Control+z")  # while drawing: the last vertex goes
    assert page.evaluate("document.body.dataset.drawingPoints") == "3"
    assert page.locator("[data-testid=draft-vertex], [data-testid=draft-first-vertex]").count() == 3
    page.keyboard.press("Control+Shift+z")
    assert page.evaluate("document.body.dataset.drawingPoints") == "4"
    page.keyboard.press("Control+z")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ws-shapes li")
    _wait_saved(page)
    (shape,) = _draft(region, desk["student"]).shapes.all()
    _assert_ring_on_points(shape.geometry["coordinates"][0], triangle[:3])

    page.keyboard.press("Control+z")  # not drawing: the last shape goes, and autosave follows
    assert page.locator("#ws-shapes li").count() == 0
    _wait_saved(page)
    assert _draft(region, desk["student"]).shapes.count() == 0

    page.keyboard.press("Control+Shift+z")
    assert page.locator("#ws-shapes li").count() == 1
    _wait_saved(page)
    assert _draft(region, desk["student"]).shapes.count() == 1


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dragging_and_alt_clicking_vertices_edit_the_saved_shape(live_server, desk, browser_page):
    page, region, project = browser_page, desk["region"], desk["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/work/next/")
    _wait_for_workspace(page)
    x0, y0, w = region.x, region.y, region.width
    square = _square(x0 + 0.2 * w, y0 + 0.2 * w, 0.5 * w)
    page.keyboard.press("p")
    _click_points(page, square)
    page.mouse.dblclick(*_screen(page, [(x0 + 0.2 * w, y0 + 0.7 * w)])[0])  # same last point
    page.wait_for_selector("#ws-shapes li")
    _wait_saved(page)
    _assert_ring_on_points(
        _draft(region, desk["student"]).shapes.get().geometry["coordinates"][0], square
    )

    page.keyboard.press("v")  # the new shape stays selected: its vertices have handles
    assert page.locator("[data-vertex]").count() == 4
    moved = (x0 + 0.1 * w, y0 + 0.1 * w)
    start, end = _screen(page, [square[0], moved])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()
    _wait_saved(page)
    ring = _draft(region, desk["student"]).shapes.get().geometry["coordinates"][0]
    _assert_ring_on_points(ring, [moved, *square[1:]])

    page.keyboard.down("Alt")
    page.mouse.click(*_screen(page, [square[2]])[0])
    page.keyboard.up("Alt")
    _wait_saved(page)
    ring = _draft(region, desk["student"]).shapes.get().geometry["coordinates"][0]
    _assert_ring_on_points(ring, [moved, square[1], square[3]])
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "workspace-edit.png"))

    page.keyboard.press("Delete")  # the selected shape
    assert page.locator("#ws-shapes li").count() == 0
    _wait_saved(page)
    assert _draft(region, desk["student"]).shapes.count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_cannot_assess_asks_for_a_reason_and_submits_it(live_server, desk, browser_page):
    page, region, project = browser_page, desk["region"], desk["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/work/next/")
    _wait_for_workspace(page)
    page.click("#ws-cannot")
    page.click("#ws-cannot-confirm")  # no reason yet: the dialog stays open
    assert page.is_visible("#ws-cannot-dialog")
    page.click("[data-reason='Out of focus']")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "workspace-cannot-assess.png"))
    page.click("#ws-cannot-confirm")
    page.wait_for_function("document.body.dataset.submission === 'submitted'", timeout=10_000)
    assert "cannot assess" in page.text_content("#ws-final")

    submission = _draft(region, desk["student"])
    assert submission.status == SubmissionStatus.SUBMITTED
    assert submission.outcome == "cannot_assess"
    assert submission.cannot_assess_reason == "Out of focus"
    assert submission.shapes.count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_stale_autosave_reloads_the_server_draft_and_says_so(live_server, desk, browser_page):
    from annotation.models import Assignment
    from annotation.services.submissions import ShapeInput, submission_save_draft

    page, region, project = browser_page, desk["region"], desk["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/work/next/")
    _wait_for_workspace(page)
    # Another tab saves first: the page still holds version 1.
    assignment = Assignment.objects.get(region=region, annotator=desk["student"])
    x0, y0, w = region.x, region.y, region.width
    elsewhere = _square(x0 + 0.6 * w, y0 + 0.6 * w, 0.2 * w)
    geometry = {"type": "Polygon", "coordinates": [[*map(list, elsewhere), list(elsewhere[0])]]}
    submission_save_draft(
        assignment=assignment,
        expected_version=1,
        shapes=[ShapeInput(desk["stroma"].pk, geometry)],
    )

    page.keyboard.press("p")
    _click_points(page, _square(x0 + 0.1 * w, y0 + 0.1 * w, 0.3 * w))
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('[data-testid=save-state]').textContent.includes('reloaded')",
        timeout=10_000,
    )
    assert "saved elsewhere" in page.text_content("#ws-notice")
    rows = page.locator("#ws-shapes li")
    assert rows.count() == 1 and "stroma" in rows.text_content()
    (shape,) = _draft(region, desk["student"]).shapes.all()  # the other tab's work is intact
    _assert_ring_on_points(shape.geometry["coordinates"][0], elsewhere)

    # Editing goes on from the reloaded version.
    page.keyboard.press("p")
    _click_points(page, _square(x0 + 0.1 * w, y0 + 0.1 * w, 0.3 * w))
    page.keyboard.press("Enter")
    _wait_saved(page)
    assert _draft(region, desk["student"]).shapes.count() == 2

    # The region waits in "my work" with its draft, one click from the workspace.
    page.goto(f"{live_server.url}/projects/{project.pk}/my-work/")
    assert page.text_content("[data-testid=active-count]").strip() == "1"
    row = page.locator(f"[data-assignment-id='{assignment.pk}']")
    assert "2 shapes" in row.text_content()
    page.screenshot(path=str(OUTPUT / "my-work-queue.png"), full_page=True)
    row.locator("a").click()
    _wait_for_workspace(page)
    assert page.locator("#ws-shapes li").count() == 2


@pytest.mark.django_db
def test_workspace_is_not_found_for_another_student(client, desk):
    from annotation.services.assignments import assignment_next

    assignment = assignment_next(project=desk["project"], user=desk["student"])
    other = make_user("ws-other")
    add_member(desk["project"], other, "annotator")
    client.login(username="ws-other", password=PASSWORD)
    assert client.get(f"/work/{assignment.pk}/").status_code == 404
    client.login(username="ws-student", password=PASSWORD)
    page = client.get(f"/work/{assignment.pk}/")
    assert page.status_code == 200
    assert b"workspace-config" in page.content
