"""The learning pages: who may read them, and the figures they show, worked out from hand-made
rows (rounds, runs, versions, scored tiles)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image

from annotation.models import LabelClass
from learning import pages
from learning.models import Round
from slides.models import Slide
from tests.annotation.dashboard_helpers import make_region
from tests.annotation.dashboard_helpers import make_run as make_consensus_run
from tests.factories import add_member, make_project, make_user
from tests.learning.factories import (
    make_proposal,
    make_round,
    make_routing,
    make_run,
    make_tile,
    make_version,
    score_tile,
)

pytestmark = pytest.mark.django_db

ROLES = ("manager", "expert", "researcher", "annotator")
ONE_DAY = dt.timedelta(days=1)


def fake_slide(project, name: str = "s1.svs", width: int = 100, height: int = 50) -> Slide:
    """A ready slide row (no file: the map images read only its size)."""
    slide = Slide.objects.create(
        name=name, path=f"/nowhere/{project.pk}/{name}", status="ready", width=width, height=height
    )
    project.slides.add(slide)
    return slide


@pytest.fixture
def team():
    users = {r: make_user(f"lp-{r}") for r in ROLES}
    project = make_project(users["manager"], name="Colon glands", round_size=10, round_quota=0.5)
    for role in ("expert", "researcher", "annotator"):
        add_member(project, users[role], role)
    users["outsider"] = make_user("lp-outsider")
    make_project(users["outsider"])
    return {"project": project, "users": users}


def _get(client, user, url):
    client.force_login(user)
    return client.get(url)


# --- the project learning page ----------------------------------------------------------------


@pytest.mark.parametrize(
    "who,status",
    [("manager", 200), ("expert", 200), ("researcher", 200), ("annotator", 404), ("outsider", 404)],
)
def test_learning_page_is_for_managers_experts_and_researchers(team, client, who, status):
    url = f"/projects/{team['project'].pk}/learning/"
    assert _get(client, team["users"][who], url).status_code == status
    assert _get(client, team["users"][who], url + "progress/").status_code == status


def test_anonymous_visitors_are_sent_to_log_in(team, client):
    response = client.get(f"/projects/{team['project'].pk}/learning/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_training_round_shows_epoch_loss_dice_and_speed_of_its_run(team, client):
    project = team["project"]
    current = make_round(project, number=1, state="training")
    make_run(
        project,
        round=current,
        epoch=2,
        epochs=8,
        history=[
            {"epoch": 1, "loss": 0.9, "val_dice": 0.41, "images_per_s": 12.0},
            {"epoch": 2, "loss": 0.61237, "val_dice": 0.5678, "images_per_s": 13.26},
        ],
    )
    html = _get(client, team["users"]["expert"], f"/projects/{project.pk}/learning/").content
    html = html.decode()
    assert re.search(r'data-field="epoch">2<', html)
    assert re.search(r'data-field="epochs">8<', html)
    assert ">0.6124<" in html  # loss, 4 places
    assert ">0.568<" in html  # validation Dice, 3 places
    assert ">13.3<" in html  # images/s, 1 place
    assert 'aria-valuenow="25.0"' in html  # 2 of 8 epochs (the bar width is set from it)
    statuses = dict(re.findall(r'data-step="(\w+)" data-status="(\w+)"', html))
    assert statuses == {
        "collecting": "done",
        "training": "current",
        "scoring": "pending",
        "proposing": "pending",
        "next": "pending",
    }
    assert html.count('class="loss"') == 2  # one dot per finished epoch on the curve


def test_round_progress_reported_by_the_step_wins_over_the_run_history(team, client):
    project = team["project"]
    current = make_round(
        project,
        state="training",
        progress={"epoch": 5, "epochs": 10, "loss": 0.25, "val_dice": 0.75, "images_per_s": 40.0},
    )
    make_run(project, round=current, epoch=1, epochs=10, history=[{"epoch": 1, "loss": 0.9}])
    response = _get(client, team["users"]["manager"], f"/projects/{project.pk}/learning/progress/")
    figures = response.json()["round"]["figures"]
    assert (figures["epoch"], figures["epochs"], figures["loss"]) == (5, 10, 0.25)
    assert response.json()["round"]["percent"] == 50.0
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


def test_collecting_round_counts_its_accepted_regions_against_the_quota(team, client):
    project = team["project"]
    slide = fake_slide(project)
    make_round(project, number=0, state="collecting")
    statuses = ["accepted"] * 3 + ["needs_more"] * 2 + ["needs_adjudication"]
    for i, status in enumerate(statuses):
        make_consensus_run(make_region(project, slide, x=10 * i), 0.9, status)
    make_region(project, slide, x=200)  # no run yet
    make_consensus_run(make_region(project, slide, origin="gold"), 0.9, "accepted")
    other_round = make_region(project, slide, x=300)
    other_round.round_number = 1
    other_round.save()
    make_consensus_run(other_round, 0.9, "accepted")
    url = f"/projects/{project.pk}/learning/progress/"
    response = _get(client, team["users"]["researcher"], url)
    # Round 0 holds 7 non-gold regions; quota 0.5 of 7 -> 4 needed; 3 accepted (the gold one
    # and round 1's do not count): 75 %.
    assert response.json()["round"]["figures"] == {"accepted": 3, "quota": 4, "regions": 7}
    assert response.json()["round"]["percent"] == 75.0


def test_scoring_round_shows_tiles_scored_of_total(team, client):
    project = team["project"]
    make_round(project, state="scoring", progress={"scored": 30, "total": 120})
    html = _get(client, team["users"]["manager"], f"/projects/{project.pk}/learning/").content
    assert b'data-field="scored" data-testid="scored">30<' in html
    assert b'data-field="total">120<' in html
    assert b'aria-valuenow="25.0"' in html


def test_failed_step_shows_its_reason_and_a_retry_button_to_managers_only(
    team, client, monkeypatch
):
    project = team["project"]
    make_round(project, state="scoring", failed_reason="CUDA out of memory", step_attempts=3)
    monkeypatch.setattr(pages, "_service", lambda action: (lambda **kw: None, (ValueError,)))
    url = f"/projects/{project.pk}/learning/"
    manager = _get(client, team["users"]["manager"], url).content.decode()
    expert = _get(client, team["users"]["expert"], url).content.decode()
    assert "CUDA out of memory" in manager and "CUDA out of memory" in expert
    assert "(3 attempts)" in manager
    assert 'data-testid="retry"' in manager and 'data-testid="retry"' not in expert
    assert 'data-step="scoring" data-status="failed"' in manager


def test_round_history_lists_stage_times(team, client):
    project = team["project"]
    make_round(
        project,
        number=0,
        state="done",
        stage_seconds={"collecting": 7200, "training": 75, "scoring": 3720, "proposing": 4},
    )
    make_round(project, number=1, state="collecting")
    html = _get(client, team["users"]["expert"], f"/projects/{project.pk}/learning/").content
    row = re.search(rb'<tr data-round="0">(.*?)</tr>', html, re.S).group(1).decode()
    assert re.findall(r'data-stage="[^"]+">([^<]+)<', row) == [
        "2 h",
        "1 min 15 s",
        "1 h 2 min",
        "4 s",
    ]


@pytest.mark.parametrize(
    "action,who,expected_calls",
    [("manager", "manager", 1), ("expert", "expert", 0), ("annotator", "annotator", 0)],
)
def test_retry_button_calls_the_round_service_for_managers_only(
    team, client, monkeypatch, action, who, expected_calls
):
    current = make_round(team["project"], state="training", failed_reason="boom")
    calls = []
    monkeypatch.setattr(
        pages, "_service", lambda name: (lambda **kw: calls.append((name, kw)), (ValueError,))
    )
    client.force_login(team["users"][who])
    response = client.post(f"/learning/rounds/{current.pk}/retry/")
    assert response.status_code == (302 if expected_calls else 404)
    assert len(calls) == expected_calls
    if calls:
        assert calls[0][0] == "retry" and calls[0][1]["round"].pk == current.pk
        assert calls[0][1]["user"] == team["users"]["manager"]


def test_start_and_cancel_call_their_services_and_report_a_refusal(team, client, monkeypatch):
    project = team["project"]
    current = make_round(project, state="collecting")
    run = make_run(project, round=None, status="running")
    calls = []

    def service(name):
        def call(**kw):
            calls.append((name, kw))
            if name == "cancel":
                raise ValueError("the run has finished")

        return call, (ValueError,)

    monkeypatch.setattr(pages, "_service", service)
    client.force_login(team["users"]["manager"])
    start = client.post(f"/projects/{project.pk}/learning/start/", follow=True)
    cancel = client.post(f"/learning/training-runs/{run.pk}/cancel/", follow=True)
    assert [c[0] for c in calls] == ["start", "cancel"]
    assert calls[0][1]["round"].pk == current.pk and calls[1][1]["run"].pk == run.pk
    assert b"Round 0 started." in start.content
    assert b"Not done: the run has finished" in cancel.content


def test_missing_services_leave_the_buttons_out(team, client, monkeypatch):
    make_round(team["project"], state="collecting")
    monkeypatch.setattr(
        pages, "SERVICES", {k: ("learning.no_such_module", "x") for k in pages.SERVICES}
    )
    html = _get(
        client, team["users"]["manager"], f"/projects/{team['project'].pk}/learning/"
    ).content
    assert b'data-testid="start-round"' not in html


# --- the model version page -------------------------------------------------------------------


@pytest.fixture
def version(team):
    project = team["project"]
    tumour = LabelClass.objects.create(project=project, name="tumour", color="#ff0000", order=1)
    stroma = LabelClass.objects.create(project=project, name="stroma", color="#0000ff", order=2)
    return make_version(
        project,
        number=3,
        class_ids=[None, tumour.pk, stroma.pk],
        metrics={
            "dice": [0.98, 0.8125, 0.5],
            "mean_dice": 0.7708,
            "ece": 0.0421,
            "best_epoch": 7,
            "epochs_run": 9,
        },
        learning_curve=[{"epoch": e, "loss": 1.0 / e, "val_dice": 0.1 * e} for e in range(1, 10)],
        hyperparameters={"lr": 0.001, "batch_size": 16},
        consensus_runs=[11, 12, 13],
        adjudications=[4],
        train_regions=[1, 2, 3],
        val_regions=[4],
    )


@pytest.mark.parametrize(
    "who,status",
    [("manager", 200), ("expert", 200), ("researcher", 200), ("annotator", 404), ("outsider", 404)],
)
def test_model_version_page_is_for_managers_experts_and_researchers(
    team, version, client, who, status
):
    assert _get(client, team["users"][who], f"/models/{version.pk}/").status_code == status


def test_model_version_page_names_each_class_with_its_dice(team, version, client):
    html = _get(client, team["users"]["researcher"], f"/models/{version.pk}/").content.decode()
    dice = re.findall(r'<li data-class="([^"]+)" data-dice="([^"]*)"', html)
    assert dice == [("background", "0.98"), ("tumour", "0.8125"), ("stroma", "0.5")]
    assert 'data-testid="mean-dice">0.771<' in html
    assert 'data-testid="ece">0.042<' in html
    assert re.search(r'data-testid="best-epoch">7 <small class="muted">of 9', html)
    assert html.count('class="val_dice"') == 9  # the learning curve: one dot per epoch
    assert "<dt>lr</dt><dd>0.001</dd>" in html and "<dt>batch_size</dt><dd>16</dd>" in html
    assert re.search(r'"big">3</span><span class="what">consensus runs \+ 1 expert decision<', html)


def test_model_version_page_lists_proposals_routing_and_slides_with_maps(team, version, client):
    project = team["project"]
    slide = fake_slide(project)
    current = make_round(project, number=1, state="collecting")
    tiles = [make_tile(project, slide, x, 0, 50) for x in (0, 50)]
    for tile in tiles:
        score_tile(tile, version, np.zeros((2, 2)), np.zeros((2, 2)))
    second = make_proposal(current, version, tiles[1], rank=2, score=0.25)
    first = make_proposal(current, version, tiles[0], rank=1, score=0.5)
    make_routing(current, version, make_region(project, slide, x=70))
    html = _get(client, team["users"]["manager"], f"/models/{version.pk}/").content.decode()
    ranks = re.findall(r'<tr data-rank="(\d+)">.*?#(\d+)</a>.*?>([\d.]+)</td>', html, re.S)
    assert ranks == [("1", str(first.region_id), "0.5000"), ("2", str(second.region_id), "0.2500")]
    assert "an expert" in html and "25%" in html
    assert f"/slides/{slide.pk}/?model={version.pk}&amp;layer=prediction" in html
    assert f"/models/{version.pk}/slides/{slide.pk}/prediction.png" in html
    assert "2 tiles scored" in html


# --- map images -------------------------------------------------------------------------------


def _png(response) -> np.ndarray:
    assert response["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


@pytest.fixture
def scored(team, version):
    """Slide 100 x 50 with one scored tile over its left half: a 2 x 2 map of 25-px cells."""
    project = team["project"]
    slide = fake_slide(project)
    tile = make_tile(project, slide, 0, 0, 50)
    score_tile(tile, version, np.array([[0, 1], [2, 1]]), np.array([[0, 255], [51, 0]]))
    return slide


def test_slide_prediction_paints_each_cell_in_its_class_colour(team, version, scored, client):
    response = _get(
        client, team["users"]["expert"], f"/models/{version.pk}/slides/{scored.pk}/prediction.png"
    )
    image = _png(response)
    clear, red, blue = [0, 0, 0, 0], [255, 0, 0, 150], [0, 0, 255, 150]
    # The slide is smaller than the map floor: one canvas pixel per level-0 pixel (100 x 50),
    # cells of 25 px; read at each cell's centre. The right half is unscored.
    assert image.shape == (50, 100, 4)
    assert image[12::25, 12::25].tolist() == [[clear, red, clear, clear], [blue, red, clear, clear]]
    assert (image[:25, 25:50] == red).all() and (image[25:, :25] == blue).all()
    assert "private" in response["Cache-Control"]


def test_slide_uncertainty_uses_the_ramp_and_is_clear_where_unscored(team, version, scored, client):
    response = _get(
        client, team["users"]["expert"], f"/models/{version.pk}/slides/{scored.pk}/uncertainty.png"
    )
    image = _png(response)[12::25, 12::25]
    # Opacity 24 (certain) to 210 (uncertain): 24 + 186 * 51 / 255 = 61.2 for the third cell.
    assert image[0, 0].tolist() == [68, 1, 84, 24]
    assert image[0, 1].tolist() == [253, 231, 37, 210]
    assert image[1, 0].tolist() == [61, 66, 128, 61]
    assert image[:, 2:].tolist() == [[[0, 0, 0, 0]] * 2] * 2


def test_region_prediction_covers_only_the_region_box(team, version, scored, client):
    region = make_region(team["project"], scored, x=25, y=0, side=50)
    response = _get(
        client, team["users"]["manager"], f"/models/{version.pk}/regions/{region.pk}/prediction.png"
    )
    image = _png(response)
    # Region x 25..75, y 0..50, one canvas pixel per level-0 pixel: x 25..50 lies in the
    # tile's right column (class 1 above and below), x 50..75 in no tile.
    clear, red = [0, 0, 0, 0], [255, 0, 0, 150]
    assert image.shape == (50, 50, 4)
    assert (image[:, :25] == red).all() and (image[:, 25:] == clear).all()


def test_annotators_see_maps_only_when_the_project_shows_them_predictions(
    team, version, scored, client
):
    url = f"/models/{version.pk}/slides/{scored.pk}/prediction.png"
    assert _get(client, team["users"]["annotator"], url).status_code == 404
    team["project"].show_prediction_to_annotators = True
    team["project"].save()
    assert _get(client, team["users"]["annotator"], url).status_code == 200
    assert _get(client, team["users"]["outsider"], url).status_code == 404


def test_maps_refuse_a_slide_of_another_project_and_an_unknown_kind(team, version, client):
    other = make_project(make_user("elsewhere"))
    elsewhere = fake_slide(other, name="other.svs")
    manager = team["users"]["manager"]
    assert (
        _get(
            client, manager, f"/models/{version.pk}/slides/{elsewhere.pk}/prediction.png"
        ).status_code
        == 404
    )
    slide = fake_slide(team["project"], name="own.svs")
    assert (
        _get(client, manager, f"/models/{version.pk}/slides/{slide.pk}/gradient.png").status_code
        == 404
    )


def test_viewer_layers_list_versions_scored_on_the_slide_for_those_who_may_see_them(
    team, version, scored, client
):
    url = f"/slides/{scored.pk}/model-layers/"
    layers = _get(client, team["users"]["researcher"], url).json()["layers"]
    assert [(x["version"], x["number"], x["tiles"]) for x in layers] == [(version.pk, 3, 1)]
    assert layers[0]["prediction"] == f"/models/{version.pk}/slides/{scored.pk}/prediction.png"
    assert [c["name"] for c in layers[0]["classes"]] == ["tumour", "stroma"]
    assert _get(client, team["users"]["annotator"], url).json() == {"layers": []}
    assert _get(client, team["users"]["outsider"], url).status_code == 404


def test_dashboard_links_to_the_learning_page_for_readers_only(team, client):
    url = f"/projects/{team['project'].pk}/dashboard/"
    link = f'href="/projects/{team["project"].pk}/learning/"'.encode()
    assert link in _get(client, team["users"]["expert"], url).content
    assert link not in _get(client, team["users"]["annotator"], url).content


def test_no_round_yet_says_so(team, client):
    assert not Round.objects.exists()
    html = _get(
        client, team["users"]["manager"], f"/projects/{team['project'].pk}/learning/"
    ).content
    assert b'data-testid="no-round"' in html


# --- with the round services themselves -------------------------------------------------------


def test_cancel_button_cancels_an_idle_training_and_the_round_collects_again(team, client):
    project = team["project"]
    current = make_round(project, number=0, state="training")
    run = make_run(project, round=current, status="running", epoch=1, epochs=10)
    client.force_login(team["users"]["manager"])
    response = client.post(f"/learning/training-runs/{run.pk}/cancel/", follow=True)
    run.refresh_from_db()
    current.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)
    assert current.state == "collecting"
    assert b"Training will stop after the current chunk." in response.content


def test_starting_a_round_with_nothing_accepted_is_refused_with_the_reason(team, client):
    project = team["project"]
    current = make_round(project, number=0, state="collecting")
    client.force_login(team["users"]["manager"])
    response = client.post(f"/projects/{project.pk}/learning/start/", follow=True)
    current.refresh_from_db()
    assert current.state == "collecting"
    assert re.search(rb"Not done: [^<]+", response.content)


# --- the workspace overlay --------------------------------------------------------------------


@pytest.fixture
def desk(team, version, scored):
    """The annotator and the expert each hold an assignment on a region of the scored slide."""
    from annotation.models import Assignment

    project = team["project"]
    region = make_region(project, scored, x=0, y=0, side=50)
    made = {}
    for role in ("annotator", "expert"):
        made[role] = Assignment.objects.create(
            region=region, annotator=team["users"][role], expires_at=timezone.now() + ONE_DAY
        )
    return made


def test_student_gets_no_prediction_overlay_while_the_project_hides_it(team, version, desk, client):
    student = team["users"]["annotator"]
    assignment = desk["annotator"]
    page = _get(client, student, f"/work/{assignment.pk}/").content.decode()
    assert f"/models/{version.pk}/" not in page
    assert _get(client, student, f"/work/{assignment.pk}/prediction/").status_code == 404
    region_png = f"/models/{version.pk}/regions/{assignment.region_id}/prediction.png"
    assert _get(client, student, region_png).status_code == 404


def test_student_gets_the_overlay_once_the_project_shows_predictions(team, version, desk, client):
    project = team["project"]
    project.show_prediction_to_annotators = True
    project.save()
    student = team["users"]["annotator"]
    assignment = desk["annotator"]
    layer = _get(client, student, f"/work/{assignment.pk}/prediction/").json()
    region_png = f"/models/{version.pk}/regions/{assignment.region_id}/prediction.png"
    assert layer["modelVersion"] == version.pk and layer["url"] == region_png
    assert [c["name"] for c in layer["classes"]] == ["tumour", "stroma"]
    assert _get(client, student, region_png).status_code == 200


def test_experts_always_get_the_overlay_but_never_on_someone_elses_assignment(
    team, version, desk, client
):
    expert = team["users"]["expert"]
    own = _get(client, expert, f"/work/{desk['expert'].pk}/prediction/")
    assert own.status_code == 200 and own.json()["modelVersion"] == version.pk
    assert _get(client, expert, f"/work/{desk['annotator'].pk}/prediction/").status_code == 404


def test_the_draft_keeps_the_prediction_it_was_shown(team, version, desk, client):
    """What the workspace sends when the overlay is turned on is stored with the draft."""
    project = team["project"]
    project.show_prediction_to_annotators = True
    project.save()
    client.force_login(team["users"]["annotator"])
    url = f"/api/assignments/{desk['annotator'].pk}/work/"
    etag = client.get(url)["ETag"]
    shown = {
        "prediction_overlay": False,
        "prediction": {"model_version": version.pk, "shown": True},
    }
    response = client.put(
        url,
        json.dumps({"shapes": [], "shown": shown}),
        content_type="application/json",
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.content
    assert client.get(url).json()["shown"]["prediction"] == {
        "model_version": version.pk,
        "shown": True,
    }


def test_the_overlay_comes_from_the_newest_version_that_scored_the_region(
    team, version, desk, scored, client
):
    project = team["project"]
    beside = make_tile(project, scored, 50, 0, 50)  # touches the region (x 0..50), no overlap
    newer = make_version(project, number=4, class_ids=version.class_ids)
    score_tile(beside, newer, np.ones((2, 2)), np.zeros((2, 2)))
    layer = _get(client, team["users"]["expert"], f"/work/{desk['expert'].pk}/prediction/").json()
    assert layer["modelVersion"] == version.pk
    newest = make_version(project, number=5, class_ids=version.class_ids)
    score_tile(make_tile(project, scored, 25, 25, 50), newest, np.ones((2, 2)), np.zeros((2, 2)))
    layer = _get(client, team["users"]["expert"], f"/work/{desk['expert'].pk}/prediction/").json()
    assert layer["modelVersion"] == newest.pk


@pytest.mark.django_db
def test_slide_library_links_each_role_to_the_learning_and_export_pages(client):
    from tests.factories import add_member, make_project, make_user

    manager, researcher, expert, student = (make_user(n) for n in ("lm", "lr", "le", "ls"))
    project = make_project(manager)
    add_member(project, researcher, "researcher")
    add_member(project, expert, "expert")
    add_member(project, student, "annotator")
    learning = f"/projects/{project.pk}/learning/"
    exports = f"/projects/{project.pk}/exports/"
    expected = {
        manager: (True, True),
        researcher: (True, True),
        expert: (True, False),
        student: (False, False),
    }
    for user, (sees_learning, sees_exports) in expected.items():
        client.force_login(user)
        page = client.get("/").content.decode()
        assert (learning in page, exports in page) == (sees_learning, sees_exports), user
