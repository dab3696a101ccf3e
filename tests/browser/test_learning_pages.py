"""The learning pages in real headless Chromium (screenshots under test-output/ looked at):
live training progress by polling, a model version, map layers in the viewer, and the
prediction overlay in the annotator workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotation.models import LabelClass, Submission
from annotation.services.assignments import assignment_next
from annotation.services.regions import regions_seed
from learning.models import Round, TrainingRun
from tests.factories import PASSWORD, add_member, ingested_slide, make_project, make_user
from tests.learning.factories import make_round, make_run, make_tile, make_version, score_tile

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HISTORY = [
    {"epoch": 1, "loss": 0.912, "val_dice": 0.402, "images_per_s": 118.0},
    {"epoch": 2, "loss": 0.6543, "val_dice": 0.5512, "images_per_s": 121.4},
    {"epoch": 3, "loss": 0.4871, "val_dice": 0.6324, "images_per_s": 120.9},
]


def _log_in(page, base: str, next_path: str, username: str) -> None:
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _classes(project) -> tuple[LabelClass, LabelClass]:
    tumour = LabelClass.objects.create(project=project, name="tumour", color="#e6194b", order=1)
    stroma = LabelClass.objects.create(project=project, name="stroma", color="#3cb44b", order=2)
    return tumour, stroma


def _score_slide(project, slide, version, side: int = 512, cells: int = 16) -> int:
    """Score a grid of tiles with smooth made-up maps: tumour in a disc, stroma around it,
    uncertainty highest on the borders between classes."""
    cx, cy, r = slide.width * 0.5, slide.height * 0.45, min(slide.width, slide.height) * 0.3
    count = 0
    for y in range(0, slide.height - side + 1, side):
        for x in range(0, slide.width - side + 1, side):
            px = x + (np.arange(cells) + 0.5) * side / cells
            py = y + (np.arange(cells) + 0.5) * side / cells
            d = np.hypot(px[None, :] - cx, py[:, None] - cy) / r
            prediction = np.where(d < 0.6, 1, np.where(d < 1.0, 2, 0))
            uncertainty = np.clip(255 * np.exp(-(((d - 0.6) / 0.12) ** 2)), 0, 255)
            uncertainty = np.maximum(uncertainty, 255 * np.exp(-(((d - 1.0) / 0.12) ** 2)))
            score_tile(make_tile(project, slide, x, y, side), version, prediction, uncertainty)
            count += 1
    return count


@pytest.fixture
def running(slides_dir):
    """A project in round 1's training (epoch 3 of 10), after round 0 and its model v1."""
    manager = make_user("al-manager")
    project = make_project(manager, name="Colon glands", target_mpp=1.0, round_size=20)
    tumour, stroma = _classes(project)
    done = make_round(
        project,
        number=0,
        state="done",
        trigger="quota",
        stage_seconds={
            "collecting": 86400 * 2 + 3600,
            "training": 412,
            "scoring": 95,
            "proposing": 3,
        },
    )
    v1 = make_version(
        project,
        number=1,
        round=done,
        class_ids=[None, tumour.pk, stroma.pk],
        metrics={
            "dice": [0.97, 0.71, 0.64],
            "mean_dice": 0.775,
            "ece": 0.061,
            "best_epoch": 9,
            "epochs_run": 10,
        },
        learning_curve=[
            {"epoch": e, "loss": 1.1 * 0.8**e, "val_dice": 0.78 * (1 - 0.6**e)}
            for e in range(1, 11)
        ],
        hyperparameters={"lr": 0.001, "batch_size": 16, "epochs": 10, "mc_samples": 8},
        consensus_runs=list(range(1, 19)),
        train_regions=list(range(1, 15)),
        val_regions=[15, 16, 17, 18],
    )
    Round.objects.filter(pk=done.pk).update(model_version=v1)
    current = make_round(project, number=1, state="training", trigger="manager", started_by=manager)
    run = make_run(project, round=current, epoch=3, epochs=10, history=HISTORY, base_version=v1)
    return {"project": project, "round": current, "run": run, "manager": manager, "v1": v1}


def test_learning_page_follows_training_by_polling(live_server, running, browser_page):
    page, project = browser_page, running["project"]
    _log_in(page, live_server.url, f"/projects/{project.pk}/learning/", "al-manager")
    page.wait_for_selector("[data-testid=current-round]")
    assert page.locator("[data-testid=epoch]").inner_text() == "3 / 10"
    assert page.locator("[data-testid=loss]").inner_text() == "0.4871"
    assert page.locator("[data-testid=val-dice]").inner_text() == "0.632"
    assert page.locator("[data-testid=images-per-s]").inner_text() == "120.9"
    steps = page.eval_on_selector_all(
        "[data-testid=step-bar] [data-step]",
        "els => els.map(e => [e.dataset.step, e.dataset.status])",
    )
    assert steps == [
        ["collecting", "done"],
        ["training", "current"],
        ["scoring", "pending"],
        ["proposing", "pending"],
        ["next", "pending"],
    ]
    assert page.locator("[data-testid=learning-curve] circle.loss").count() == 3
    assert page.locator("[data-testid=cancel-training]").is_visible()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "learning-training.png"), full_page=True)

    # The worker finishes epoch 4: the page shows it without a reload.
    page.evaluate("window.__marker = 'same page'")
    run = running["run"]
    TrainingRun.objects.filter(pk=run.pk).update(
        epoch=4,
        history=[*HISTORY, {"epoch": 4, "loss": 0.3012, "val_dice": 0.6871, "images_per_s": 122.5}],
    )
    page.wait_for_function(
        "document.querySelector('[data-testid=loss]').textContent === '0.3012'", timeout=15_000
    )
    assert page.locator("[data-testid=epoch]").inner_text() == "4 / 10"
    assert page.locator("[data-testid=val-dice]").inner_text() == "0.687"
    assert page.locator("[data-testid=learning-curve] circle.loss").count() == 4
    width = page.eval_on_selector(".progress span[data-field=percent]", "e => e.style.width")
    assert width == "40%"
    assert page.evaluate("window.__marker") == "same page"

    # Training ends and scoring starts: the page moves to the next step by itself.
    Round.objects.filter(pk=running["round"].pk).update(
        state="scoring", progress={"scored": 12, "total": 48}, stage_seconds={"training": 1830}
    )
    page.wait_for_selector("[data-testid=panel-scoring]", timeout=15_000)
    assert page.locator("[data-testid=scored]").inner_text() == "12"
    assert page.locator("[data-testid=step-training]").get_attribute("data-status") == "done"
    assert page.locator("[data-testid=step-scoring]").get_attribute("data-status") == "current"
    page.screenshot(path=str(OUTPUT / "learning-scoring.png"), full_page=True)


def test_model_version_page_and_its_maps_in_the_viewer(
    live_server, running, browser_page, slides_dir
):
    page, project, v1 = browser_page, running["project"], running["v1"]
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    tiles = _score_slide(project, slide, v1)
    _log_in(page, live_server.url, f"/models/{v1.pk}/", "al-manager")
    page.wait_for_selector("[data-testid=model-version]")
    page.wait_for_function(
        "[...document.querySelectorAll('.slide-maps img')].every(i => i.complete && i.naturalWidth)"
    )
    assert page.locator("[data-testid=dice-per-class] li").count() == 3
    assert page.locator("[data-testid=learning-curve] circle.val_dice").count() == 10
    assert page.locator("[data-testid=slide-maps]").inner_text().count(f"{tiles} tiles scored") == 1
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "learning-model-version.png"), full_page=True)

    v2 = make_version(project, number=2, class_ids=v1.class_ids, metrics={"mean_dice": 0.8})
    score_tile(make_tile(project, slide, 0, 0, 300), v2, np.ones((4, 4)), np.zeros((4, 4)))
    page.click("[data-testid=viewer-prediction]")
    page.wait_for_function("document.body.dataset.layerPrediction === 'yes'", timeout=20_000)
    assert page.locator("[data-testid=layer-prediction]").is_checked()
    # The map lies over the slide: same x, y and width in viewport coordinates; its height
    # reaches at most one canvas pixel (of >= 1024 across) below the slide's.
    bounds = page.evaluate(
        """() => { const w = window.histocrowdViewer.world;
                   return [0, 1].map(i => { const b = w.getItemAt(i).getBounds();
                                            return [b.x, b.y, b.width, b.height]; }); }"""
    )
    assert bounds[1][:3] == pytest.approx(bounds[0][:3], abs=1e-9)
    assert 0 <= bounds[1][3] - bounds[0][3] <= 1 / 700
    # Two versions scored this slide: a picker, set to the version the link asked for.
    picker = page.locator("[data-testid=layer-version]")
    assert picker.locator("option").count() == 2
    assert picker.input_value() == str(v1.pk)
    picker.select_option(str(v2.pk))
    page.wait_for_function(
        "window.histocrowdViewer.world.getItemCount() === 2 && "
        f"window.histocrowdViewer.world.getItemAt(1).source.url.includes('/models/{v2.pk}/')",
        timeout=20_000,
    )
    picker.select_option(str(v1.pk))
    page.wait_for_function(
        "window.histocrowdViewer.world.getItemCount() === 2 && "
        f"window.histocrowdViewer.world.getItemAt(1).source.url.includes('/models/{v1.pk}/')",
        timeout=20_000,
    )
    page.check("[data-testid=layer-uncertainty]")
    page.wait_for_function("document.body.dataset.layerUncertainty === 'yes'", timeout=20_000)
    page.uncheck("[data-testid=layer-prediction]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(OUTPUT / "learning-viewer-uncertainty.png"))
    page.uncheck("[data-testid=layer-uncertainty]")
    page.check("[data-testid=layer-prediction]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(OUTPUT / "learning-viewer-prediction.png"))


@pytest.fixture
def desk(slides_dir):
    """A student with one region of a slide the project's model v1 has scored."""
    manager, student = make_user("al-desk-manager"), make_user("al-student")
    project = make_project(
        manager,
        name="Colon glands",
        target_mpp=1.0,
        region_size=256,
        redundancy_k=1,
        gold_mix_rate=0.0,
    )
    add_member(project, student, "annotator")
    slide = ingested_slide(slides_dir / "cmu-1-small-region.svs", project)
    tumour, stroma = _classes(project)
    version = make_version(project, number=1, class_ids=[None, tumour.pk, stroma.pk])
    _score_slide(project, slide, version, side=256, cells=16)
    regions_seed(project=project, per_slide=1, seed=3, created_by=manager)
    assignment = assignment_next(project=project, user=student)
    return {"project": project, "assignment": assignment, "version": version}


def _open_workspace(page, base: str, assignment) -> None:
    _log_in(page, base, f"/work/{assignment.pk}/", "al-student")
    page.wait_for_selector("[data-testid=workspace]", timeout=20_000)
    page.wait_for_function("document.body.dataset.workLoaded === 'yes'", timeout=20_000)
    page.wait_for_function("document.body.dataset.tilesLoaded === 'yes'", timeout=30_000)


def test_student_without_the_setting_gets_no_prediction_overlay(live_server, desk, browser_page):
    page = browser_page
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    _open_workspace(page, live_server.url, desk["assignment"])
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-testid=prediction-toggle]").count() == 0
    assert "/models/" not in page.content()
    assert not [u for u in requested if "/models/" in u]
    assert Submission.objects.filter(shown__has_key="prediction").count() == 0


def test_student_turning_the_overlay_on_records_that_it_was_shown(live_server, desk, browser_page):
    project, version = desk["project"], desk["version"]
    project.show_prediction_to_annotators = True
    project.save()
    page = browser_page
    _open_workspace(page, live_server.url, desk["assignment"])
    toggle = page.locator("[data-testid=prediction-toggle]")
    toggle.wait_for(timeout=10_000)
    assert toggle.inner_text() == "◧ Prediction v1"
    toggle.click()
    page.wait_for_function("document.body.dataset.predictionShown === 'yes'", timeout=20_000)
    assert toggle.get_attribute("aria-pressed") == "true"
    page.wait_for_function(
        "document.querySelector('[data-testid=save-state]').dataset.state === 'saved'",
        timeout=15_000,
    )
    submission = Submission.objects.get(assignment=desk["assignment"])
    assert submission.shown["prediction"] == {"model_version": version.pk, "shown": True}
    OUTPUT.mkdir(exist_ok=True)
    page.mouse.move(700, 600)  # off the button: its hover colour would hide the pressed one
    page.wait_for_timeout(500)
    page.screenshot(path=str(OUTPUT / "learning-workspace-prediction.png"))

    # After a reload (overlay off), the next autosave still says the prediction was shown.
    page.reload()
    page.wait_for_function("document.body.dataset.workLoaded === 'yes'", timeout=20_000)
    page.wait_for_function(
        "window.histocrowdWorkspace.config.shown.prediction !== undefined", timeout=10_000
    )
    page.evaluate("window.histocrowdWorkspace.markChanged()")
    page.wait_for_function(
        "document.querySelector('[data-testid=save-state]').dataset.state === 'saved'",
        timeout=15_000,
    )
    submission.refresh_from_db()
    assert submission.version > 1
    assert submission.shown["prediction"] == {"model_version": version.pk, "shown": True}


def test_collecting_and_failed_rounds_as_a_manager_sees_them(live_server, running, browser_page):
    page, project = browser_page, running["project"]
    Round.objects.filter(pk=running["round"].pk).update(
        state="scoring",
        failed_reason="scoring was started 4 times without finishing (its worker died each time?)",
        step_attempts=4,
        progress={"scored": 230, "total": 512},
    )
    _log_in(page, live_server.url, f"/projects/{project.pk}/learning/", "al-manager")
    page.wait_for_selector("[data-testid=round-failure]")
    assert page.locator("[data-testid=round-failure]").is_visible()
    assert "worker died" in page.locator("[data-testid=round-failure]").inner_text()
    assert page.locator("[data-testid=retry]").is_visible()
    assert page.locator("[data-testid=step-scoring]").get_attribute("data-status") == "failed"
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "learning-failed.png"), full_page=True)

    # The manager's retry elsewhere clears the failure: the page notices and redraws.
    Round.objects.filter(pk=running["round"].pk).update(failed_reason="", step_attempts=0)
    page.wait_for_selector("[data-testid=round-failure]", state="hidden", timeout=15_000)
    assert page.locator("[data-testid=step-scoring]").get_attribute("data-status") == "current"

    Round.objects.filter(pk=running["round"].pk).update(state="done")
    make_round(project, number=2, state="collecting")
    page.wait_for_selector("[data-testid=panel-collecting]", timeout=15_000)
    assert page.locator("[data-testid=start-round]").is_visible()
    page.screenshot(path=str(OUTPUT / "learning-collecting.png"), full_page=True)
