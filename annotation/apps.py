"""Annotation app: projects, roles and (later) regions, annotations and consensus."""

from __future__ import annotations

from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "annotation"

    def ready(self) -> None:
        from annotation import credentials

        credentials.connect()  # a password change revokes the user's API tokens
