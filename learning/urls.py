"""Learning pages and map images.

Routes (in config/urls.py): ``path("", include("learning.urls"))``.
"""

from __future__ import annotations

from django.urls import path

from learning import pages

app_name = "learning"

urlpatterns = [
    path("projects/<int:project_id>/learning/", pages.project_learning, name="project"),
    path("projects/<int:project_id>/learning/progress/", pages.progress, name="progress"),
    path("projects/<int:project_id>/learning/start/", pages.start_round, name="start"),
    path("learning/rounds/<int:round_id>/retry/", pages.retry_round, name="retry"),
    path("learning/training-runs/<int:run_id>/cancel/", pages.cancel_run, name="cancel"),
    path("models/<int:version_id>/", pages.model_version, name="model"),
    path(
        "models/<int:version_id>/slides/<int:slide_id>/<str:kind>.png",
        pages.slide_map,
        name="slide-map",
    ),
    path(
        "models/<int:version_id>/regions/<int:region_id>/<str:kind>.png",
        pages.region_map,
        name="region-map",
    ),
    path("slides/<int:slide_id>/model-layers/", pages.slide_layers_json, name="slide-layers"),
    path(
        "work/<int:assignment_id>/prediction/",
        pages.workspace_prediction,
        name="workspace-prediction",
    ),
]
