"""Settings for bench/tiles.py: the project's settings plus the two comparison endpoints."""

from __future__ import annotations

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
