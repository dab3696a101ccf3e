"""The project's URLs plus the floor (F) and the obvious implementation (O) of bench/tiles.py."""

from __future__ import annotations

from django.urls import path

from bench import tile_peers
from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path(
        "bench/fixed/<int:slide_id>_files/<int:level>/<int:col>_<int:row>.jpeg",
        tile_peers.fixed_tile,
    ),
    path(
        "bench/fixed-anonymous/<int:slide_id>_files/<int:level>/<int:col>_<int:row>.jpeg",
        tile_peers.fixed_tile_anonymous,
    ),
    path(
        "bench/openslide/<int:slide_id>_files/<int:level>/<int:col>_<int:row>.jpeg",
        tile_peers.openslide_tile,
    ),
    *project_urlpatterns,
]
