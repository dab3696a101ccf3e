"""Writes of the annotation app (HackSoft style: ``<entity>_<action>``, keyword-only)."""

from annotation.services.projects import (
    membership_remove,
    membership_set,
    project_add_slide_by_path,
    project_add_uploaded_slide,
    project_create,
    project_remove_slide,
)

__all__ = [
    "membership_remove",
    "membership_set",
    "project_add_slide_by_path",
    "project_add_uploaded_slide",
    "project_create",
    "project_remove_slide",
]
