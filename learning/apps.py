"""Learning app: model versions, training runs, scoring, proposals and rounds."""

from __future__ import annotations

from django.apps import AppConfig


class LearningConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "learning"

    def ready(self) -> None:
        # Tasks outside learning/tasks.py: the export builder (learning.exports.tasks).
        from learning.exports import tasks  # noqa: F401
