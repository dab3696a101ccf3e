"""Work that should not count never counts (audit finding 1).

A slot that a manager released or reassigned, a slot past its ``expires_at`` and the slot of an
excluded member take no more work: saving or submitting answers 409 with the reason, every table
stays byte-identical, and the next consensus run's inputs do not grow.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from annotation.models import Assignment, Membership
from annotation.services.merge import merge_inputs
from tests.factories import add_member, make_user
from tests.security.conftest import table_dump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def _auth(world: dict, who: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {world['tokens'][who]}"}


def _shape(world: dict) -> list[dict]:
    ring = [[300, 300], [420, 300], [420, 420], [300, 420], [300, 300]]
    return [
        {"label_class": world["class_a"].pk, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    ]


def _save(client, world: dict, who: str, assignment_id: int, version: int):
    return client.put(
        f"/api/assignments/{assignment_id}/work/",
        {"shapes": _shape(world)},
        content_type="application/json",
        HTTP_IF_MATCH=f'"{version}"',
        **_auth(world, who),
    )


def _submit(client, world: dict, who: str, assignment_id: int, version: int):
    return client.post(
        f"/api/assignments/{assignment_id}/submit/",
        {"outcome": "shapes"},
        content_type="application/json",
        HTTP_IF_MATCH=f'"{version}"',
        **_auth(world, who),
    )


def _version(client, world: dict, who: str, assignment_id: int) -> int:
    work = client.get(f"/api/assignments/{assignment_id}/work/", **_auth(world, who))
    assert work.status_code == 200
    return int(work["ETag"].strip('"'))


def _assert_refused_and_nothing_changed(client, world: dict, who: str, assignment_id: int):
    """The audit's two requests after the slot closed: both 409 with a reason, no row moved."""
    before = table_dump()
    inputs_before = len(merge_inputs(region=world["region_a"]).submissions)
    # Each request carries the current version, so a refusal is about the slot, never a 412.
    saved = _save(client, world, who, assignment_id, _version(client, world, who, assignment_id))
    submitted = _submit(
        client, world, who, assignment_id, _version(client, world, who, assignment_id)
    )
    assert (saved.status_code, submitted.status_code) == (409, 409), (
        saved.content,
        submitted.content,
    )
    assert saved.json()["detail"] and submitted.json()["detail"]
    assert table_dump() == before
    assert len(merge_inputs(region=world["region_a"]).submissions) == inputs_before


def test_excluded_annotator_can_neither_save_nor_submit(two_projects, client):
    world = two_projects
    slot = world["assignment_a"]
    assert _save(client, world, "annotator", slot.pk, 1).status_code == 200
    member = Membership.objects.get(project=world["a"], user=world["users"]["annotator"])
    excluded = client.post(
        f"/api/projects/{world['a'].pk}/members/{member.pk}/exclude/",
        {"reason": "copied a peer"},
        content_type="application/json",
        **_auth(world, "manager"),
    )
    assert excluded.status_code == 200
    assert Assignment.objects.get(pk=slot.pk).status == "released"
    _assert_refused_and_nothing_changed(client, world, "annotator", slot.pk)
    version = _version(client, world, "annotator", slot.pk)
    assert "excluded" in _submit(client, world, "annotator", slot.pk, version).json()["detail"]


def test_released_slot_takes_no_more_work(two_projects, client):
    world = two_projects
    slot = world["assignment_a"]
    assert _save(client, world, "annotator", slot.pk, 1).status_code == 200
    released = client.post(f"/api/assignments/{slot.pk}/release/", **_auth(world, "manager"))
    assert released.status_code == 200 and released.json()["status"] == "released"
    _assert_refused_and_nothing_changed(client, world, "annotator", slot.pk)


def test_reassigned_slot_counts_only_for_its_new_holder(two_projects, client):
    world = two_projects
    slot = world["assignment_a"]
    assert _save(client, world, "annotator", slot.pk, 1).status_code == 200
    newcomer = make_user("newcomer")
    add_member(world["a"], newcomer, "annotator")
    moved = client.post(
        f"/api/assignments/{slot.pk}/reassign/",
        {"username": "newcomer"},
        content_type="application/json",
        **_auth(world, "manager"),
    )
    assert moved.status_code == 200
    _assert_refused_and_nothing_changed(client, world, "annotator", slot.pk)
    # The new holder's slot does take work: the refusal is about the slot, not the region.
    client.force_login(newcomer)
    new_id = moved.json()["id"]
    ring = [[300, 300], [420, 300], [420, 420], [300, 420], [300, 300]]
    body = {
        "shapes": [
            {
                "label_class": world["class_a"].pk,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ]
    }
    put = client.put(
        f"/api/assignments/{new_id}/work/",
        body,
        content_type="application/json",
        HTTP_IF_MATCH='"1"',
    )
    assert put.status_code == 200
    done = client.post(
        f"/api/assignments/{new_id}/submit/",
        {"outcome": "shapes"},
        content_type="application/json",
        HTTP_IF_MATCH='"2"',
    )
    assert done.status_code == 200
    counted = merge_inputs(region=world["region_a"]).submissions
    assert [s.annotator_id for s in counted] == [newcomer.pk]


def test_slot_past_its_expiry_is_refused_before_any_sweep_marks_it(two_projects, client):
    world = two_projects
    slot = world["assignment_a"]
    assert _save(client, world, "annotator", slot.pk, 1).status_code == 200
    # Time passes; no next-region call or sweep has run, so the row still says "active".
    Assignment.objects.filter(pk=slot.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert Assignment.objects.get(pk=slot.pk).status == "active"
    _assert_refused_and_nothing_changed(client, world, "annotator", slot.pk)
    version = _version(client, world, "annotator", slot.pk)
    assert "expired" in _save(client, world, "annotator", slot.pk, version).json()["detail"]


def test_an_active_slot_of_a_member_in_good_standing_still_saves_and_submits(two_projects, client):
    """The control: the same requests on an open slot succeed, so the refusals above are about
    the slot's state and not a broken request."""
    world = two_projects
    slot = world["assignment_a"]
    assert _save(client, world, "annotator", slot.pk, 1).status_code == 200
    submitted = _submit(client, world, "annotator", slot.pk, 2)
    assert submitted.status_code == 200 and submitted.json()["counts"] is True
    assert Assignment.objects.get(pk=slot.pk).status == "submitted"
