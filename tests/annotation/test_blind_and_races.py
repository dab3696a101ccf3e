"""Blind annotation, racing writers, and hostile geometry through the API."""

from __future__ import annotations

import json
import math
import threading

import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely.geometry import box as make_box
from shapely.geometry import shape as to_shape

from annotation.models import Assignment, Region, Shape, Submission
from annotation.services.assignments import assignment_next
from tests.annotation.conftest import square
from tests.factories import add_member, make_user


def _put(client, aid, version, shapes):
    return client.put(
        f"/api/assignments/{aid}/work/",
        {"shapes": shapes},
        content_type="application/json",
        HTTP_IF_MATCH=f'"{version}"',
    )


@pytest.mark.django_db
def test_student_sees_nothing_of_peers_work_before_submitting(campaign, client):
    project, tumour = campaign["project"], campaign["tumour"]
    region = Region.objects.create(
        project=project,
        slide=campaign["slide"],
        x=300,
        y=300,
        width=513,
        height=513,
        origin="seeded",
    )
    peer, me = campaign["students"][0], campaign["students"][1]
    peer_slot = assignment_next(project=project, user=peer)
    my_slot = assignment_next(project=project, user=me)
    assert peer_slot.region == my_slot.region == region
    client.force_login(peer)
    marker = 432.125  # a coordinate only the peer's shape has
    peer_shape = {
        "type": "Polygon",
        "coordinates": [[[marker, 400], [600, 400], [600, 600], [marker, 600], [marker, 400]]],
    }
    assert (
        _put(
            client, peer_slot.pk, 1, [{"label_class": tumour.pk, "geometry": peer_shape}]
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/api/assignments/{peer_slot.pk}/submit/",
            {"outcome": "shapes"},
            content_type="application/json",
            HTTP_IF_MATCH='"2"',
        ).status_code
        == 200
    )

    client.force_login(me)
    probes = {
        "region list": "/api/regions/",
        "region detail": f"/api/regions/{region.pk}/",
        "region submissions": f"/api/regions/{region.pk}/submissions/",
        "region history": f"/api/regions/{region.pk}/history/",
        "assignment list": "/api/assignments/",
        "my work": f"/api/assignments/{my_slot.pk}/work/",
        "project": f"/api/projects/{project.pk}/",
        "project list": "/api/projects/",
        "members": f"/api/projects/{project.pk}/members/",
    }
    for label, url in probes.items():
        response = client.get(url)
        assert response.status_code == 200, label
        body = response.content.decode()
        assert str(marker) not in body and "432.1" not in body, label
        assert f'"{peer.username}"' not in body or label == "members", label
        assert '"submitted"' not in body or label in ("assignment list",), label
    submissions = client.get(f"/api/regions/{region.pk}/submissions/").json()
    assert submissions["count"] == 0
    assert client.get(f"/api/regions/{region.pk}/history/").json()["count"] == 0
    for url in (
        f"/api/assignments/{peer_slot.pk}/",
        f"/api/assignments/{peer_slot.pk}/work/",
        f"/api/projects/{project.pk}/export-annotations/?slide={campaign['slide'].pk}",
    ):
        assert client.get(url).status_code == 404, url
    # The assignment list is the student's own, and says nothing of the region's other slots.
    own = client.get("/api/assignments/").json()["results"]
    assert [a["id"] for a in own] == [my_slot.pk]


@pytest.mark.django_db(transaction=True)
def test_parallel_next_region_calls_give_each_slot_once(campaign):
    project = campaign["project"]
    extra = [make_user(f"par{i}") for i in range(8)]
    for user in extra:
        add_member(project, user, "annotator")
    students = campaign["students"] + extra  # 12 students
    for i in range(4):  # 4 regions x k = 3 slots = 12 slots
        Region.objects.create(
            project=project,
            slide=campaign["slide"],
            x=100 + 520 * (i % 2),
            y=100 + 520 * (i // 2),
            width=513,
            height=513,
            origin="seeded",
        )
    barrier = threading.Barrier(len(students))
    results, errors = {}, []

    def ask(user) -> None:
        client = Client()
        client.force_login(user)
        barrier.wait()
        try:
            response = client.post(f"/api/projects/{project.pk}/next-region/")
            results[user.username] = (
                response.status_code,
                response.json() if response.content else None,
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(u,)) for u in students]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(code == 200 for code, _ in results.values()), results
    per_region = {}
    for username, (_, body) in results.items():
        per_region.setdefault(body["region"]["id"], []).append(username)
    assert sorted(len(v) for v in per_region.values()) == [3, 3, 3, 3]
    assert Assignment.objects.count() == 12
    assert len(set(Assignment.objects.values_list("region", "annotator"))) == 12


@pytest.mark.django_db(transaction=True)
def test_racing_edits_with_the_same_version_give_one_success_and_one_412(campaign):
    project, tumour = campaign["project"], campaign["tumour"]
    Region.objects.create(
        project=project,
        slide=campaign["slide"],
        x=300,
        y=300,
        width=513,
        height=513,
        origin="seeded",
    )
    student = campaign["students"][0]
    slot = assignment_next(project=project, user=student)
    clients = [Client(), Client()]
    for c in clients:
        c.force_login(student)
    pairs = 25
    outcomes = []
    for n in range(pairs):
        version = json.loads(clients[0].get(f"/api/assignments/{slot.pk}/work/").content)["version"]
        barrier = threading.Barrier(2)
        codes = []

        def write(client, side, barrier=barrier, codes=codes, version=version, n=n) -> None:
            barrier.wait()
            try:
                codes.append(
                    _put(
                        client,
                        slot.pk,
                        version,
                        [
                            {
                                "label_class": tumour.pk,
                                "geometry": square(310 + side * 100, 310 + n, 50),
                            }
                        ],
                    ).status_code
                )
            finally:
                connection.close()

        threads = [threading.Thread(target=write, args=(clients[i], i)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        outcomes.append(sorted(codes))
    assert outcomes == [[200, 412]] * pairs
    submission = Submission.objects.get(annotator=student)
    assert submission.version == 1 + pairs  # every success bumped it once, no lost update
    assert Shape.objects.filter(submission=submission).count() == 1


coordinate = st.one_of(
    st.floats(min_value=-200, max_value=1500, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e12]),
)
point = st.tuples(coordinate, coordinate)
ring = st.lists(point, min_size=0, max_size=40).map(lambda pts: [list(p) for p in pts])
polygon = st.builds(
    lambda outer, holes: {"type": "Polygon", "coordinates": [outer, *holes]},
    ring,
    st.lists(ring, max_size=2),
)
nonsense = st.sampled_from(
    [
        {"type": "Point", "coordinates": [1, 2]},
        {"type": "Polygon"},
        {"type": "Polygon", "coordinates": "abc"},
        {},
        {"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [3, 4]]]},
    ]
)


@pytest.mark.django_db
@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(geometry=st.one_of(polygon, nonsense))
def test_hostile_geometry_is_refused_or_stored_valid_inside_the_region(campaign, client, geometry):
    project, tumour = campaign["project"], campaign["tumour"]
    region = Region.objects.filter(project=project).first() or Region.objects.create(
        project=project, slide=campaign["slide"], x=0, y=0, width=1000, height=1000, origin="seeded"
    )
    student = campaign["students"][2]
    slot = Assignment.objects.filter(annotator=student).first() or assignment_next(
        project=project, user=student
    )
    client.force_login(student)
    before = client.get(f"/api/assignments/{slot.pk}/work/").json()
    response = client.put(
        f"/api/assignments/{slot.pk}/work/",
        json.dumps({"shapes": [{"label_class": tumour.pk, "geometry": geometry}]}, allow_nan=True),
        content_type="application/json",
        HTTP_IF_MATCH=f'"{before["version"]}"',
    )
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        after = client.get(f"/api/assignments/{slot.pk}/work/").json()
        assert after["version"] == before["version"] and after["shapes"] == before["shapes"]
        return
    stored = Shape.objects.get(submission__annotator=student)
    geom = to_shape(stored.geometry)
    assert geom.is_valid and not geom.is_empty and geom.geom_type in ("Polygon", "MultiPolygon")
    assert make_box(*region.bounds).buffer(1e-6).covers(geom)


@pytest.mark.django_db
def test_vertex_cap_and_request_size_limit(campaign, client, settings):
    project, tumour = campaign["project"], campaign["tumour"]
    Region.objects.create(
        project=project, slide=campaign["slide"], x=0, y=0, width=1500, height=1500, origin="seeded"
    )
    student = campaign["students"][3]
    slot = assignment_next(project=project, user=student)
    client.force_login(student)

    def circle(n: int) -> dict:
        pts = [
            [700 + 500 * math.cos(2 * math.pi * i / n), 700 + 500 * math.sin(2 * math.pi * i / n)]
            for i in range(n)
        ]
        return {"type": "Polygon", "coordinates": [pts + [pts[0]]]}

    cap = settings.ANNOTATION_MAX_VERTICES
    over = _put(client, slot.pk, 1, [{"label_class": tumour.pk, "geometry": circle(cap + 1)}])
    assert over.status_code == 400 and str(cap) in over.json()["detail"]
    ok = _put(client, slot.pk, 1, [{"label_class": tumour.pk, "geometry": circle(20_000)}])
    assert ok.status_code == 200, ok.content[:300]
    huge = json.dumps({"shapes": [{"label_class": tumour.pk, "geometry": circle(1_000_000)}]})
    assert len(huge) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    refused = client.put(
        f"/api/assignments/{slot.pk}/work/",
        huge,
        content_type="application/json",
        HTTP_IF_MATCH='"2"',
    )
    assert refused.status_code in (400, 413)
    assert Submission.objects.get(annotator=student).version == 2
