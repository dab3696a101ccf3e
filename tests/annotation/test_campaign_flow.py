"""A campaign as its users drive it through the API: seed, assign, draw, submit, exclude."""

from __future__ import annotations

import pytest

from annotation.models import (
    Assignment,
    Region,
    Shape,
    Submission,
    SubmissionHistory,
)
from annotation.services.regions import regions_seed
from tests.annotation.conftest import square

pytestmark = pytest.mark.django_db


def _next(client, project_id: int):
    return client.post(f"/api/projects/{project_id}/next-region/")


def _put(client, assignment_id: int, version, shapes, **extra):
    headers = {} if version is None else {"HTTP_IF_MATCH": f'"{version}"'}
    return client.put(
        f"/api/assignments/{assignment_id}/work/",
        {"shapes": shapes, **extra},
        content_type="application/json",
        **headers,
    )


def _submit(client, assignment_id: int, version, **body):
    return client.post(
        f"/api/assignments/{assignment_id}/submit/",
        body,
        content_type="application/json",
        HTTP_IF_MATCH=f'"{version}"',
    )


def test_seeding_places_non_overlapping_regions_on_tissue(campaign, client):
    client.force_login(campaign["manager"])
    response = client.post(
        f"/api/projects/{campaign['project'].pk}/seed-regions/",
        {"per_slide": 6, "seed": 1},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    regions = list(Region.objects.filter(project=campaign["project"]))
    assert len(regions) == 6
    for r in regions:
        assert r.width == r.height == 513 and r.origin == "seeded"
        assert r.x + r.width <= 2220 and r.y + r.height <= 2967
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            assert (
                a.x + a.width <= b.x
                or b.x + b.width <= a.x
                or a.y + a.height <= b.y
                or b.y + b.height <= a.y
            )
    # Never on background: every seeded square is mostly tissue on the tissue mask.
    import numpy as np
    from PIL import Image

    mask = np.asarray(Image.open(campaign["slide"].tissue_mask).convert("L")) > 127
    scale = 2220 / mask.shape[1]
    for r in regions:
        window = mask[
            int(r.y / scale) : int((r.y + r.height) / scale),
            int(r.x / scale) : int((r.x + r.width) / scale),
        ]
        assert window.mean() >= 0.6


def test_each_region_goes_to_k_distinct_annotators(campaign, client):
    regions_seed(project=campaign["project"], per_slide=2, seed=3, created_by=None)
    seen = {}
    for _round in range(3):
        for student in campaign["students"]:
            client.force_login(student)
            response = _next(client, campaign["project"].pk)
            if response.status_code == 204:
                continue
            assert response.status_code == 200, response.content
            data = response.json()
            assert "origin" not in data["region"]
            # Finish it so the next call hands out a new one.
            aid = data["id"]
            Assignment.objects.filter(pk=aid).update(status="submitted")
            seen.setdefault(data["region"]["id"], []).append(student.username)
    assert len(seen) == 2
    for names in seen.values():
        assert len(names) == 3 and len(set(names)) == 3  # k = 3, all distinct
    client.force_login(campaign["students"][0])
    assert _next(client, campaign["project"].pk).status_code in (200, 204)


def test_draw_autosave_version_and_submit(campaign, client):
    project, tumour = campaign["project"], campaign["tumour"]
    regions_seed(project=project, per_slide=1, seed=5, created_by=None)
    region = Region.objects.get(project=project)
    student = campaign["students"][0]
    client.force_login(student)
    aid = _next(client, project.pk).json()["id"]
    work = client.get(f"/api/assignments/{aid}/work/")
    assert work.status_code == 200 and work["ETag"] == '"1"'
    shape = square(region.x + 10, region.y + 10, 100)
    assert (
        _put(client, aid, None, [{"label_class": tumour.pk, "geometry": shape}]).status_code == 428
    )
    saved = _put(
        client, aid, 1, [{"label_class": tumour.pk, "geometry": shape}], time_spent_seconds=12
    )
    assert saved.status_code == 200, saved.content
    assert saved["ETag"] == '"2"' and saved.json()["shapes"][0]["area"] == 100 * 100
    stale = _put(client, aid, 1, [])
    assert stale.status_code == 412
    assert Shape.objects.filter(submission__annotator=student).count() == 1
    # Drafts are not audited.
    assert not SubmissionHistory.objects.exists()
    done = _submit(client, aid, 2, outcome="shapes")
    assert done.status_code == 200 and done.json()["status"] == "submitted"
    assert Assignment.objects.get(pk=aid).status == "submitted"
    history = SubmissionHistory.objects.get()
    assert history.user == student and history.action == "submitted"
    from shapely.geometry import shape as to_shape

    stored = to_shape(history.snapshot["shapes"][0]["geometry"])
    assert stored.equals(to_shape(shape))  # same square (ring orientation is normalised)
    # Submission is final for the annotator.
    assert _put(client, aid, 3, []).status_code == 409  # the slot is closed: final, with the reason
    assert Shape.objects.filter(submission__annotator=student).count() == 1


def test_bow_tie_is_repaired_and_outside_shape_refused(campaign, client):
    project, tumour = campaign["project"], campaign["tumour"]
    regions_seed(project=project, per_slide=1, seed=5, created_by=None)
    region = Region.objects.get(project=project)
    client.force_login(campaign["students"][1])
    aid = _next(client, project.pk).json()["id"]
    x, y = region.x, region.y
    bow_tie = {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + 10, y + 10], [x + 10, y], [x, y + 10], [x, y]]],
    }
    response = _put(client, aid, 1, [{"label_class": tumour.pk, "geometry": bow_tie}])
    assert response.status_code == 200, response.content
    # Two triangles of 10 * 5 / 2 = 25 each: make_valid keeps both.
    assert response.json()["shapes"][0]["area"] == pytest.approx(50)
    assert "self-intersection" in " ".join(response.json()["repairs"][0]["repairs"])
    outside = square(region.x + region.width + 50, region.y, 20)
    refused = _put(client, aid, 2, [{"label_class": tumour.pk, "geometry": outside}])
    assert refused.status_code == 400 and "outside" in refused.json()["detail"]
    assert Submission.objects.get(pk=response.json()["id"]).version == 2
    assert Shape.objects.filter(submission_id=response.json()["id"]).count() == 1


def test_nothing_and_cannot_assess_are_explicit(campaign, client):
    project = campaign["project"]
    regions_seed(project=project, per_slide=2, seed=5, created_by=None)
    client.force_login(campaign["students"][2])
    aid = _next(client, project.pk).json()["id"]
    assert _submit(client, aid, 1, outcome="shapes").status_code == 400  # nothing drawn
    assert _submit(client, aid, 1, outcome="cannot_assess").status_code == 400  # no reason
    ok = _submit(client, aid, 1, outcome="cannot_assess", cannot_assess_reason="out of focus")
    assert ok.status_code == 200 and ok.json()["outcome"] == "cannot_assess"
    aid2 = _next(client, project.pk).json()["id"]
    assert aid2 != aid
    assert _submit(client, aid2, 1, outcome="nothing").json()["outcome"] == "nothing"


def test_manager_excludes_an_annotator_and_their_work_stops_counting(campaign, client):
    project, tumour = campaign["project"], campaign["tumour"]
    regions_seed(project=project, per_slide=1, seed=5, created_by=None)
    region = Region.objects.get(project=project)
    student = campaign["students"][3]
    client.force_login(student)
    aid = _next(client, project.pk).json()["id"]
    _put(client, aid, 1, [{"label_class": tumour.pk, "geometry": square(region.x, region.y, 50)}])
    _submit(client, aid, 2, outcome="shapes")
    membership = project.memberships.get(user=student)
    client.force_login(campaign["manager"])
    url = f"/api/projects/{project.pk}/members/{membership.pk}/exclude/"
    assert client.post(url, {}, content_type="application/json").status_code == 400
    response = client.post(url, {"reason": "drew random shapes"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["excluded"]
    submission = Submission.objects.get(annotator=student)
    assert submission.counts is False and submission.version == 4
    assert (
        SubmissionHistory.objects.filter(
            submission=submission, action="excluded", user=campaign["manager"]
        ).count()
        == 1
    )
    client.force_login(student)
    assert _next(client, project.pk).status_code == 409


def test_gold_regions_qualify_a_student_before_real_work(campaign, client):
    project, tumour = campaign["project"], campaign["tumour"]
    project.qualification_gold_regions = 1
    project.qualification_min_dice = 0.6
    project.save()
    regions_seed(project=project, per_slide=1, seed=5, created_by=None)
    real = Region.objects.get(project=project)
    # The expert makes a gold region and outlines a 100 x 100 square in it.
    client.force_login(campaign["expert"])
    gold = client.post(
        "/api/regions/",
        {
            "project": project.pk,
            "slide": campaign["slide"].pk,
            "x": 100,
            "y": 100,
            "width": 400,
            "height": 400,
            "origin": "gold",
        },
        content_type="application/json",
    )
    assert gold.status_code == 201, gold.content
    expert_slot = Assignment.objects.get(region_id=gold.json()["id"], annotator=campaign["expert"])
    _put(client, expert_slot.pk, 1, [{"label_class": tumour.pk, "geometry": square(200, 200, 100)}])
    assert _submit(client, expert_slot.pk, 2).status_code == 200
    # An unqualified student gets the gold region first, unannounced.
    student = campaign["students"][0]
    client.force_login(student)
    first = _next(client, project.pk).json()
    assert first["region"]["id"] == gold.json()["id"] and "origin" not in first["region"]
    # Their square is shifted by 20 px: overlap 80 x 100, Dice = 2 * 8000 / 20000 = 0.8.
    _put(client, first["id"], 1, [{"label_class": tumour.pk, "geometry": square(220, 200, 100)}])
    submitted = _submit(client, first["id"], 2).json()
    # Scored against the expert, but the student's answer does not say so (gold is unannounced).
    assert submitted["gold_dice"] is None
    assert Submission.objects.get(pk=submitted["id"]).gold_dice == pytest.approx(0.8)
    project.memberships.get(user=student).refresh_from_db()
    assert project.memberships.get(user=student).qualified_at is not None
    assert _next(client, project.pk).json()["region"]["id"] == real.pk


def test_unqualified_student_gets_no_real_work_after_a_poor_gold_region(campaign, client):
    project, tumour = campaign["project"], campaign["tumour"]
    project.qualification_gold_regions = 1
    project.save()
    regions_seed(project=project, per_slide=1, seed=5, created_by=None)
    client.force_login(campaign["expert"])
    gold = client.post(
        "/api/regions/",
        {
            "project": project.pk,
            "slide": campaign["slide"].pk,
            "x": 100,
            "y": 100,
            "width": 400,
            "height": 400,
            "origin": "gold",
        },
        content_type="application/json",
    ).json()
    slot = Assignment.objects.get(region_id=gold["id"], annotator=campaign["expert"])
    _put(client, slot.pk, 1, [{"label_class": tumour.pk, "geometry": square(200, 200, 100)}])
    _submit(client, slot.pk, 2)
    client.force_login(campaign["students"][1])
    first = _next(client, project.pk).json()
    _put(client, first["id"], 1, [{"label_class": tumour.pk, "geometry": square(400, 400, 50)}])
    submitted = _submit(client, first["id"], 2).json()
    assert submitted["gold_dice"] is None  # scored, but not told: gold is unannounced
    assert Submission.objects.get(pk=submitted["id"]).gold_dice == 0.0
    assert _next(client, project.pk).status_code == 204  # no more gold, and not qualified


def test_expired_assignment_returns_its_slot_to_the_pool(campaign, client):
    import datetime as dt

    from django.utils import timezone

    project = campaign["project"]
    project.redundancy_k = 1
    project.save()
    region = Region.objects.create(
        project=project,
        slide=campaign["slide"],
        x=100,
        y=100,
        width=513,
        height=513,
        origin="seeded",
    )
    first, second = campaign["students"][0], campaign["students"][1]
    client.force_login(first)
    slot = _next(client, project.pk).json()
    client.force_login(second)
    assert _next(client, project.pk).status_code == 204  # k = 1 and the slot is taken
    Assignment.objects.filter(pk=slot["id"]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    again = _next(client, project.pk)
    assert again.status_code == 200 and again.json()["region"]["id"] == region.pk
    assert Assignment.objects.get(pk=slot["id"]).status == "expired"
    # The first student never gets the same region twice.
    client.force_login(first)
    assert _next(client, project.pk).status_code == 204
