"""Schemathesis against the drf-spectacular schema, in process through the WSGI app.

Shared by the CI test (tests/security/test_schema_fuzz.py, ~10 examples per operation) and the
nightly benchmark (bench/schemathesis_nightly.py, more examples, negative data too). Operations
are read from the schema at run time, so endpoints added later are fuzzed without edits here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

logger = logging.getLogger(__name__)

# Checked on every response. Left out, and why:
# - negative_data_rejection / positive_data_acceptance: the schema cannot state the rules that
#   depend on rows (an id of the wrong project, a slide that is not ready), so a schema-valid
#   body is often rightly refused and an off-schema query parameter is often rightly ignored.
# - ignored_auth / use_after_free / ensure_resource_availability: stateful or auth-probing
#   checks; authentication is covered by the permission matrix and tests/security/test_auth.py.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CALLERS = ("manager", "expert", "annotator", "researcher", "outsider", "anonymous")


@dataclass
class Outcome:
    operations: int = 0
    calls: int = 0
    failures: list[str] = field(default_factory=list)


def load_schema() -> schemathesis.BaseSchema:
    """The schema as served at /api/schema/, generated in process, bound to the WSGI app."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = WSGIHandler()
    return schema


@contextlib.contextmanager
def keep_test_connection() -> Iterator[None]:
    """The WSGI handler closes the database connection after each request, which would end the
    test's transaction; Django's own test client disconnects the same signals."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def fuzz(
    tokens: dict[str, str],
    known_ids: list[int],
    *,
    max_examples: int,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE,),
    refresh_tokens: object = None,
) -> Outcome:
    """Every operation x mode, ``max_examples`` cases each, a caller drawn per case.

    Path ids are drawn half the time from ``known_ids`` (the objects of the test's projects),
    so cases reach real rows and not only 404s. ``refresh_tokens`` runs before each call (a
    fuzzed DELETE /api/auth/token/ revokes the caller's token).
    """
    schema = load_schema()
    outcome = Outcome()
    ids = st.sampled_from(known_ids) if known_ids else st.integers(min_value=1)
    with keep_test_connection():
        for result in schema.get_all_operations():
            operation = result.ok()
            outcome.operations += 1
            for mode in modes:
                failure = _fuzz_operation(
                    operation, mode, tokens, ids, max_examples, outcome, refresh_tokens
                )
                if failure:
                    outcome.failures.append(failure)
    return outcome


def _fuzz_operation(operation, mode, tokens, ids, max_examples, outcome, refresh_tokens):  # noqa: ANN001, ANN202, PLR0913
    id_params = [
        p.name
        for p in operation.iter_parameters()
        if p.location == "path" and (p.name in ("id", "pk") or p.name.endswith(("_pk", "_id")))
    ]

    @given(
        case=operation.as_strategy(generation_mode=mode),
        caller=st.sampled_from(CALLERS),
        real_ids=st.booleans(),
        chosen=st.lists(ids, min_size=len(id_params), max_size=len(id_params)),
    )
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case, caller, real_ids, chosen):  # noqa: ANN001, ANN202
        if real_ids and id_params and mode == GenerationMode.POSITIVE:
            for name, value in zip(id_params, chosen, strict=True):
                case.path_parameters[name] = value
        if callable(refresh_tokens):
            refresh_tokens()
        headers = {} if caller == "anonymous" else {"Authorization": f"Token {tokens[caller]}"}
        outcome.calls += 1
        # A savepoint per call: a request that fails mid-transaction (a 500) must not poison
        # the test's transaction for the operations after it.
        with transaction.atomic():
            response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:
        return None  # no case of this mode exists (e.g. negative data for a bodiless DELETE)
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report every operation's
        text = str(exc)
        logger.warning("%s (%s): %s", operation.label, mode.value, text[:2000])
        return f"{operation.label} [{mode.value}]: {text[:3000]}"
    return None
