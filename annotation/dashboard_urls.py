"""Dashboard and teaching-feedback pages.

Routes (in config/urls.py): ``path("", include("annotation.dashboard_urls"))``.
"""

from __future__ import annotations

from django.urls import path

from annotation import dashboard_pages, feedback_pages

app_name = "dashboard"

urlpatterns = [
    path(
        "projects/<int:project_id>/dashboard/",
        dashboard_pages.project_dashboard,
        name="project",
    ),
    path("feedback/<int:submission_id>/", feedback_pages.feedback, name="feedback"),
]
