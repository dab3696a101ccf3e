"""Slides app: whole-slide images, their ingest and deep-zoom serving."""

from __future__ import annotations

import warnings

from django.apps import AppConfig


class SlidesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "slides"

    def ready(self) -> None:
        from PIL import Image

        # Pillow only warns on an image past MAX_IMAGE_PIXELS; an upload or crafted label image
        # must be refused instead (RELIABILITY.md: bombs contained).
        warnings.simplefilter("error", Image.DecompressionBombWarning)
