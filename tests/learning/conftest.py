"""Fixtures of the learning tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def export_world(db, settings):
    from tests.learning.export_helpers import export_world

    settings.TILE_PREBUILD_MAX_TILES = 0  # ingest stays fast; tiles are not what is tested
    return export_world()
