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
