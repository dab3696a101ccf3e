"""Deep-zoom URLs (OpenSeadragon's naming: <name>.dzi and <name>_files/<level>/<col>_<row>)."""

from __future__ import annotations

from django.urls import path

from slides import pages, views

app_name = "slides"

urlpatterns = [
    path("", pages.library, name="library"),
    path("slides/<int:slide_id>/", pages.viewer, name="viewer"),
    path("dz/<int:slide_id>.dzi", views.dzi, name="dzi"),
    path(
        "dz/<int:slide_id>_files/<int:level>/<int:col>_<int:row>.jpeg",
        views.tile,
        name="tile",
    ),
]
