"""Permission-matrix rows and URLs for the learning API (rounds, runs, model versions).

Rows are plain tuples ``(name, method, expect)``; relations a row does not name expect 404.
"""

from __future__ import annotations

from django.urls import reverse

from learning.models import Round
from tests.learning.factories import make_round, make_version

_READERS = {"expert": 200, "researcher": 200, "manager": 200, "anonymous": 401}

LEARNING_API_ROWS: list[tuple[str, str, dict[str, int]]] = [
    ("project-rounds", "get", _READERS),
    # The world has no accepted region: the manager is refused (409) and nothing changes.
    ("round-start", "post", {"manager": 409, "anonymous": 401}),
    ("round-retry", "post", {"manager": 409, "anonymous": 401}),  # the round has not failed
    ("training-run-cancel", "post", {"manager": 409, "anonymous": 401}),  # already finished
    # Everyone's own projects' versions (an outsider's list is empty, not refused).
    (
        "model-version-list",
        "get",
        {r: 200 for r in ("outsider", "annotator", "assignee", "expert", "researcher", "manager")}
        | {"anonymous": 401},
    ),
    ("model-version-detail", "get", _READERS),
    ("model-version-proposals", "get", _READERS),
]
LEARNING_API_NAMES = {name for name, _, _ in LEARNING_API_ROWS}


def matrix_url(world: dict, name: str) -> str:
    project = world["project"]
    current = Round.objects.filter(project=project).exclude(state="done").first()
    current = current or make_round(project, state="collecting")
    if name in ("project-rounds", "round-start"):
        return reverse(name, kwargs={"project_id": project.pk})
    if name == "round-retry":
        return reverse(name, kwargs={"round_id": current.pk})
    if name == "model-version-list":
        return reverse(name)
    version = make_version(project, class_ids=[None])
    if name == "training-run-cancel":
        return reverse(name, kwargs={"run_id": version.training_run_id})
    return reverse(name, kwargs={"version_id": version.pk})
