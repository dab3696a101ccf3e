"""The campaign simulator's --ci profile, end to end: live web server, real worker, rounds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

pytestmark = [
    pytest.mark.live_worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(420),
]


@pytest.fixture(scope="module")
def ci_report(django_db_setup: None, django_db_blocker: object, tmp_path_factory: object) -> Path:
    out = tmp_path_factory.mktemp("simulation") / "report"
    with django_db_blocker.unblock():
        call_command("simulate_campaign", "--ci", "--out", str(out))
    return out


@pytest.fixture
def results(ci_report: Path) -> dict:
    return json.loads((ci_report / "results.json").read_text())


def test_ci_campaign_advances_through_the_learning_rounds(results: dict) -> None:
    (campaign,) = results["campaigns"]
    rounds = campaign["rounds"]
    assert len(rounds) == 2, campaign["notes"]
    assert rounds[0]["learning"]["state"] == "done"
    assert rounds[0]["proposed_regions"] > 0
    # The second round's regions came from the model's proposals and were labelled.
    assert rounds[1]["regions"] == rounds[0]["proposed_regions"]
    assert rounds[1]["labelled_regions"] > rounds[0]["labelled_regions"]
    assert rounds[0]["model_version"] is not None
    assert campaign["curve"][0]["model_dice"] is not None


def test_consensus_beats_the_median_student(results: dict) -> None:
    pooled = results["campaigns"][0]["pooled"]
    assert pooled["final"] > pooled["median_student"]
    assert pooled["majority_vote"] > pooled["median_student"]


def test_estimated_reliability_ranks_careless_students_below_careful_ones(results: dict) -> None:
    students = results["campaigns"][0]["students"].values()
    careful = [s["estimated"] for s in students if s["kind"] == "careful"]
    sloppy = [s["estimated"] for s in students if s["kind"] != "careful"]
    assert careful and sloppy
    assert max(sloppy) < float(np.median(careful)), (careful, sloppy)
    assert np.mean(sloppy) < np.mean(careful)


def test_report_and_plots_exist_and_are_not_blank(ci_report: Path) -> None:
    report = (ci_report / "report.md").read_text()
    assert "## Frozen set-up" in report and "## Headline" in report
    plots = sorted(ci_report.glob("*.png"))
    names = {p.name.split("-")[0].removesuffix(".png") for p in plots}
    assert {"consensus", "reliability", "stages", "learning"} <= names
    for plot in plots:
        assert f"]({plot.name})" in report
        pixels = np.asarray(Image.open(plot).convert("RGB"), dtype=np.float64)
        assert pixels.var() > 0, plot.name
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1, plot.name
