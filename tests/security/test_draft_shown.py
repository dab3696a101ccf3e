"""The draft's ``shown`` record has a schema and a size cap (audit: 4 MB of arbitrary JSON
per save was accepted and kept with every draft)."""

from __future__ import annotations

import pytest

from tests.security.conftest import table_dump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(120)]


def _put(client, world: dict, shown: object):
    return client.put(
        f"/api/assignments/{world['assignment_a'].pk}/work/",
        {"shapes": [], "shown": shown},
        content_type="application/json",
        HTTP_IF_MATCH='"1"',
        HTTP_AUTHORIZATION=f"Token {world['tokens']['annotator']}",
    )


@pytest.mark.parametrize(
    "shown",
    [
        {"junk": "x" * 200_000},
        {"prediction_overlay": False, "notes": ["anything"]},
        {"prediction": {"model_version": 1, "shown": True, "extra": 1}},
        {"prediction": {"model_version": "v1", "shown": True}},
        ["prediction_overlay"],
    ],
    ids=["200 kB of junk", "unknown key", "unknown nested key", "wrong type", "not an object"],
)
def test_shown_outside_its_schema_is_refused_and_nothing_is_saved(two_projects, client, shown):
    before = table_dump()
    response = _put(client, two_projects, shown)
    assert response.status_code == 400, response.content
    assert "shown" in response.json()
    assert table_dump() == before


def test_what_the_workspace_records_is_accepted(two_projects, client):
    shown = {"prediction_overlay": False, "prediction": {"model_version": 3, "shown": True}}
    response = _put(client, two_projects, shown)
    assert response.status_code == 200
    assert response.json()["shown"] == shown
