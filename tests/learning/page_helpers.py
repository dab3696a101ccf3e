"""Permission-matrix rows and URLs for the learning pages (see tests/test_permission_matrix).

Rows are plain tuples ``(name, method, expect)``: the matrix wraps them in its ``Row``;
relations a row does not name expect 404.
"""

from __future__ import annotations

import numpy as np
from django.urls import reverse

from learning.models import Round
from tests.learning.factories import make_round, make_tile, make_version, score_tile

READERS = {"expert": 200, "researcher": 200, "manager": 200, "anonymous": 302}

LEARNING_ROWS: list[tuple[str, str, dict[str, int]]] = [
    ("learning:project", "get", READERS),
    ("learning:progress", "get", READERS),
    # Form posts: a manager is sent back to the page (with a message saying what happened).
    ("learning:start", "post", {"manager": 302, "anonymous": 302}),
    ("learning:retry", "post", {"manager": 302, "anonymous": 302}),
    ("learning:cancel", "post", {"manager": 302, "anonymous": 302}),
    ("learning:model", "get", READERS),
    # Maps: annotators only where the project shows them predictions (off here).
    ("learning:slide-map", "get", READERS),
    ("learning:region-map", "get", READERS),
    (
        "learning:slide-layers",
        "get",
        {r: 200 for r in ("annotator", "assignee", "expert", "researcher", "manager")}
        | {"anonymous": 302},
    ),
    # The assignee's own workspace overlay, with predictions shown to annotators (set below).
    ("learning:workspace-prediction", "get", {"assignee": 200, "anonymous": 302}),
]


def matrix_url(world: dict, name: str) -> str:
    """URL of a learning page in the matrix's world: a round, and a version scored on its slide."""
    project, slide = world["project"], world["slide"]
    current = Round.objects.filter(project=project).exclude(state="done").first()
    current = current or make_round(project, state="collecting")
    version = make_version(project, class_ids=[None])
    tile = make_tile(project, slide, 0, 0, 512)
    score_tile(tile, version, np.zeros((4, 4)), np.full((4, 4), 128))
    if name == "learning:workspace-prediction":
        project.show_prediction_to_annotators = True
        project.save(update_fields=["show_prediction_to_annotators"])
        return reverse(name, kwargs={"assignment_id": world["per_name"]["assignment"]["pk"]})
    if name in ("learning:project", "learning:progress", "learning:start"):
        return reverse(name, kwargs={"project_id": project.pk})
    if name == "learning:retry":
        return reverse(name, kwargs={"round_id": current.pk})
    if name == "learning:cancel":  # a finished run: the service refuses, the page says so
        return reverse(name, kwargs={"run_id": version.training_run_id})
    if name == "learning:model":
        return reverse(name, kwargs={"version_id": version.pk})
    if name == "learning:slide-map":
        return reverse(
            name, kwargs={"version_id": version.pk, "slide_id": slide.pk, "kind": "prediction"}
        )
    if name == "learning:region-map":
        return reverse(
            name,
            kwargs={
                "version_id": version.pk,
                "region_id": world["region"].pk,
                "kind": "uncertainty",
            },
        )
    if name == "learning:slide-layers":
        return reverse(name, kwargs={"slide_id": slide.pk})
    raise KeyError(name)
