"""A mixin for viewsets nested under ``/api/projects/<project_pk>/``."""

from __future__ import annotations

from rest_framework.request import Request

from annotation.models import Project
from annotation.selectors import access_project, access_project_as_manager


class ProjectScopedMixin:
    """Members read, managers write; the check runs before any request body is parsed, so an
    outsider's malformed write gets 404 like any other, never a validation error."""

    kwargs: dict
    request: Request

    def _project(self) -> Project:
        project_id = int(self.kwargs["project_pk"])
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return access_project(self.request.user, project_id)
        return access_project_as_manager(self.request.user, project_id)

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if not getattr(self, "swagger_fake_view", False):
            self._project()
