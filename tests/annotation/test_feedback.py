"""Teaching feedback: a student's gold outline against the expert's, for its author only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Submission
from tests.annotation.dashboard_helpers import gold_pair, make_region, make_run
from tests.annotation.merge_helpers import submit
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.annotation.urls_dashboard")]


def _url(submission: Submission) -> str:
    return reverse("dashboard:feedback", kwargs={"submission_id": submission.pk})


@pytest.fixture
def gold(campaign):
    c = campaign
    reference, own = gold_pair(
        c["project"], c["slide"], c["expert"], c["students"][0], c["tumour"], shift=10
    )
    return {**c, "reference": reference, "own": own}


def test_author_sees_both_outlines_and_their_dice(gold, client):
    own = gold["own"]
    assert own.gold_dice == pytest.approx(0.75)  # 30 x 40 shared of two 40 x 40 squares
    client.force_login(gold["students"][0])
    response = client.get(_url(own))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="dice">0.75<' in html
    # Both outlines in level-0 pixels (as stored, rings normalised), under a viewBox that is
    # the region itself.
    assert 'viewBox="2000 1500 100 100"' in html
    assert 'class="expert" d="M2010 1550 L2050 1550 L2050 1510 L2010 1510 L2010 1550 Z"' in html
    assert 'class="own" d="M2020 1550 L2060 1550 L2060 1510 L2020 1510 L2020 1550 Z"' in html
    # Shared 75 % of the expert's outline, missed 25 %, 25 % of the student's lies outside.
    assert "<dt>Shared</dt><dd>75%" in html and "<dt>Missed</dt><dd>25%" in html
    assert "<dt>Extra</dt><dd>25%" in html


def test_the_region_image_behind_the_outlines_loads_for_the_author(gold, client):
    client.force_login(gold["students"][0])
    response = client.get(_url(gold["own"]))
    crop = response.context["crop_url"]
    image = client.get(crop)
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("who", ["other_student", "expert", "manager", "researcher", "outsider"])
def test_nobody_but_the_author_sees_the_feedback(gold, client, who):
    users = {
        "other_student": gold["students"][1],
        "expert": gold["expert"],
        "manager": gold["manager"],
        "researcher": gold["researcher"],
        "outsider": make_user("stranger"),
    }
    client.force_login(users[who])
    assert client.get(_url(gold["own"])).status_code == 404


def test_anonymous_users_are_sent_to_log_in(gold, client):
    assert client.get(_url(gold["own"])).status_code == 302


def test_no_feedback_before_the_submission_is_submitted(campaign, client):
    region = make_region(campaign["project"], campaign["slide"], origin="gold", x=2000)
    submit(region, campaign["expert"], [(2010, 1010, 40)], campaign["tumour"])
    draft = Submission.objects.create(region=region, annotator=campaign["students"][0])
    client.force_login(campaign["students"][0])
    assert client.get(_url(draft)).status_code == 404


def test_no_feedback_on_a_region_that_is_not_gold(campaign, client):
    region = make_region(campaign["project"], campaign["slide"])
    own = submit(region, campaign["students"][0], [(1010, 1010, 40)], campaign["tumour"])
    client.force_login(campaign["students"][0])
    assert client.get(_url(own)).status_code == 404


def test_the_experts_reference_outline_is_not_feedback(gold, client):
    client.force_login(gold["expert"])
    assert client.get(_url(gold["reference"])).status_code == 404


def test_students_dashboard_lists_their_gold_results_with_feedback_links(gold, client):
    client.force_login(gold["students"][0])
    html = client.get(
        reverse("dashboard:project", kwargs={"project_id": gold["project"].pk})
    ).content.decode()
    assert _url(gold["own"]) in html and 'data-testid="gold-curve"' in html
    assert 'data-dice="0.7500"' in html


def test_closed_region_shows_the_final_answer_over_the_students_outline(campaign, client):
    """An accepted consensus closes a region: the author sees its outline over theirs with
    Dice = 2|A∩B| / (|A| + |B|), and My work lists it."""
    from annotation.models import ConsensusRun

    region = make_region(campaign["project"], campaign["slide"])
    student = campaign["students"][0]
    own = submit(region, student, [(1010, 1010, 40)], campaign["tumour"])
    client.force_login(student)
    assert client.get(_url(own)).status_code == 404  # still open: no final answer yet
    run = make_run(region, dice=0.9)
    # The final answer: a 40 x 40 square shifted by 20 px: overlap 20 x 40 = 800 px²,
    # Dice = 2 * 800 / (1600 + 1600) = 0.5.
    shifted = {
        "type": "Polygon",
        "coordinates": [[[1030, 1010], [1070, 1010], [1070, 1050], [1030, 1050], [1030, 1010]]],
    }
    ConsensusRun.objects.filter(pk=run.pk).update(
        polygons=[{"label_class": campaign["tumour"].pk, "geometry": shifted}]
    )
    page = client.get(_url(own))
    assert page.status_code == 200
    assert page.context["fb"].kind == "final"
    assert page.context["fb"].dice == pytest.approx(0.5)
    assert "the final answer" in page.content.decode()
    work = client.get(f"/projects/{campaign['project'].pk}/my-work/")
    assert [fb.submission.pk for fb in work.context["closed"]] == [own.pk]
    assert "0.50" in work.content.decode()
    client.force_login(campaign["students"][1])
    assert client.get(_url(own)).status_code == 404
