"""The dashboard and the gold feedback page in real headless Chromium (screenshots looked at).

A campaign of hand-made figures: 24 merged regions spread over the Dice range, regions still
at every earlier step, six students with throughput and reliability, one gold comparison.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from annotation.models import AnnotatorReliability, LabelClass
from tests.annotation.dashboard_helpers import gold_pair, make_region, make_run, submitted
from tests.factories import PASSWORD, add_member, ingested_slide, make_project, make_user

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.annotation.urls_dashboard"),
]


@pytest.fixture
def busy(slides_dir):
    rng = random.Random(7)
    manager, expert = make_user("dash-manager"), make_user("dr-expert")
    students = [make_user(n) for n in ("amira", "ben", "chen", "dana", "eli", "farah")]
    project = make_project(
        manager, name="Colon glands", target_mpp=1.0, redundancy_k=3, gold_mix_rate=0.0
    )
    add_member(project, expert, "expert")
    for s in students:
        add_member(project, s, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    tumour = LabelClass.objects.create(project=project, name="tumour", color="#e6194b", order=1)
    dice = [
        0.95,
        0.92,
        0.91,
        0.88,
        0.87,
        0.86,
        0.85,
        0.84,
        0.83,
        0.82,
        0.81,
        0.93,
        0.97,
        0.78,
        0.74,
        0.72,
        0.66,
        0.61,
        0.55,
        0.52,
        0.45,
        0.38,
        0.31,
        0.12,
    ]
    for i, d in enumerate(dice):
        status = "accepted" if d >= 0.8 else "needs_more" if d >= 0.5 else "needs_adjudication"
        # "needs more" asked for a fourth annotator, who has not submitted yet.
        region = make_region(
            project, slide, x=100 + 50 * i, y=100, extra_slots=1 if status == "needs_more" else 0
        )
        make_run(region, d, status, contested_fraction=round((1 - d) * 0.3, 3))
        for s in rng.sample(students, 3):
            submitted(region, s, seconds=rng.uniform(40, 400))
    for i in range(5):  # waiting for annotators
        region = make_region(project, slide, x=100 + 50 * i, y=800)
        for s in rng.sample(students, i % 3):
            submitted(region, s, seconds=rng.uniform(40, 400))
    for i in range(2):  # full, waiting for the merge
        region = make_region(project, slide, x=100 + 50 * i, y=900)
        for s in students[:3]:
            submitted(region, s)
    figures = [
        (0.91, 0.97, "gold"),
        (0.84, 0.95, "staple"),
        (0.78, 0.92, "gold"),
        (0.66, 0.89, "staple"),
        (0.93, 0.83, "staple"),
        (0.58, 0.97, "gold"),
    ]
    for s, (sens, spec, source) in zip(students, figures, strict=True):
        AnnotatorReliability.objects.create(
            project=project,
            annotator=s,
            source=source,
            sensitivity=sens,
            specificity=spec,
            n_regions=8,
        )
    _, own = gold_pair(project, slide, expert, students[0], tumour, shift=9)
    return {"project": project, "manager": manager, "student": students[0], "own": own}


def _log_in(page, base: str, next_path: str, username: str) -> None:
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_manager_dashboard_draws_the_charts(live_server, busy, browser_page):
    page, project = browser_page, busy["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/dashboard/", "dash-manager")
    page.wait_for_selector("[data-testid=dashboard]")
    bars = page.eval_on_selector_all(
        "[data-testid=agreement-histogram] rect.bar", "els => els.map(e => +e.dataset.count)"
    )
    assert bars == [0, 1, 0, 2, 1, 2, 2, 3, 8, 5]
    # The bars are drawn at a readable size, not collapsed.
    box = page.locator("[data-testid=agreement-histogram]").bounding_box()
    assert box["width"] > 400 and box["height"] > 150
    assert page.locator("[data-testid=throughput-chart] rect.bar").count() == 6
    assert page.locator("[data-testid=reliability-chart] circle.dot").count() == 6
    assert page.locator("[data-testid=step-waiting_merge]").get_attribute("data-count") == "2"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)


def test_student_feedback_shows_both_outlines_over_the_region(live_server, busy, browser_page):
    page, own = browser_page, busy["own"]
    _log_in(page, live_server.url, f"/feedback/{own.pk}/", busy["student"].username)
    page.wait_for_selector("[data-testid=feedback]")
    page.wait_for_function("document.querySelector('#overlay img').naturalWidth > 0")
    assert page.locator("[data-testid=dice]").inner_text() == "0.78"
    assert page.locator("#overlay path.expert").count() == 1
    page.uncheck("input[data-layer=layer-own]")
    assert not page.locator("#overlay path.own").is_visible()
    page.check("input[data-layer=layer-own]")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "feedback.png"), full_page=True)


def test_student_dashboard_shows_only_their_own_work(live_server, busy, browser_page):
    page, project = browser_page, busy["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/dashboard/", busy["student"].username)
    page.wait_for_selector("[data-testid=own-figures]")
    assert page.locator("[data-testid=agreement-histogram]").count() == 0
    assert page.locator("[data-annotator]").count() == 0
    assert page.locator("[data-testid=gold-curve] circle.dot").count() == 1
    page.click("text=Region #")
    page.wait_for_selector("[data-testid=feedback]")
    OUTPUT.mkdir(exist_ok=True)
    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    page.screenshot(path=str(OUTPUT / "dashboard-student.png"), full_page=True)
