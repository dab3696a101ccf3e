"""Learning app: model versions, training runs, scoring, proposals and rounds."""

from __future__ import annotations

from django.apps import AppConfig


class LearningConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "learning"
