"""The API keeps its schema: no 5xx, documented status codes and bodies, for every role.

CI runs ~10 cases per operation with schema-valid data. The nightly run
(``python bench/schemathesis_nightly.py``) sets ``SCHEMA_FUZZ_EXAMPLES`` higher and
``SCHEMA_FUZZ_NEGATIVE=1`` to add schema-violating data.
"""

from __future__ import annotations

import os

import pytest
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from tests.security.schema_fuzz import fuzz

EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "10"))
MODES = (GenerationMode.POSITIVE,) + (
    (GenerationMode.NEGATIVE,) if os.environ.get("SCHEMA_FUZZ_NEGATIVE") == "1" else ()
)

pytestmark = pytest.mark.timeout(int(os.environ.get("SCHEMA_FUZZ_TIMEOUT", "280")))


def _known_ids(world: dict) -> list[int]:
    keys = ("a", "b", "slide_a", "slide_b", "class_a", "class_b", "region_a", "region_b")
    ids = {world[k].pk for k in keys}
    ids |= {world["assignment_a"].pk, world["assignment_b"].pk, world["member_b"].pk}
    return sorted(ids)


def test_every_operation_answers_without_5xx_and_as_its_schema_says(two_projects, settings):
    world = two_projects
    users = world["users"]

    def refresh() -> None:
        # A fuzzed DELETE /api/auth/token/ revokes the caller's token: put it back.
        for name, user in users.items():
            Token.objects.get_or_create(user=user, defaults={"key": world["tokens"][name]})

    outcome = fuzz(
        world["tokens"],
        _known_ids(world),
        max_examples=EXAMPLES,
        modes=MODES,
        refresh_tokens=refresh,
    )
    assert outcome.operations >= 40, outcome.operations  # the schema was read, not empty
    # Hypothesis stops early on small input spaces; most operations still get several cases.
    assert outcome.calls >= outcome.operations * 3, (outcome.calls, outcome.operations)
    assert not outcome.failures, "\n\n".join(outcome.failures)


ODD_IDS = ["99999999999999999999999", "9223372036854775808", "-1", "0", "abc", "1e3"]


def _operations() -> list[tuple[str, str, dict]]:
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((path, method, operation))
    return found


def test_odd_ids_in_every_path_and_id_filter_answer_4xx_json(two_projects, client):
    """Ids past 64 bits, negative, zero or not numbers, in every path parameter of every
    operation and in every integer query parameter: a JSON 4xx, never a 500."""
    import re

    token = two_projects["tokens"]["manager"]
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    checked = 0
    for path, method, operation in _operations():
        params = operation.get("parameters", [])
        names = re.findall(r"{(\w+)}", path)
        for odd in ODD_IDS if names else []:
            url = path
            for name in names:
                url = url.replace("{" + name + "}", odd)
            response = getattr(client, method)(url, **auth)
            checked += 1
            assert 400 <= response.status_code < 500, (method, url, response.status_code)
            assert response["Content-Type"].startswith("application/json"), (method, url)
        int_queries = [
            p["name"]
            for p in params
            if p.get("in") == "query" and p.get("schema", {}).get("type") == "integer"
        ]
        if method == "get" and not names:
            for name in int_queries:
                response = client.get(path, {name: ODD_IDS[0]}, **auth)
                checked += 1
                assert response.status_code in (200, 400), (path, name, response.status_code)
    assert checked > 100, checked
