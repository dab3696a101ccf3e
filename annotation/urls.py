"""Annotator pages: the region workspace, the next-region redirect and "my work"."""

from __future__ import annotations

from django.urls import path

from annotation import pages

app_name = "annotation"

urlpatterns = [
    path("work/<int:assignment_id>/", pages.workspace, name="workspace"),
    path("projects/<int:project_id>/work/next/", pages.next_region, name="next_region"),
    path("projects/<int:project_id>/my-work/", pages.my_work, name="my_work"),
]
