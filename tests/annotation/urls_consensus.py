"""The project's URLs plus the consensus API, until config/urls.py includes it."""

from __future__ import annotations

from django.urls import include, path

from config.urls import urlpatterns as _project_urls

urlpatterns = [path("api/", include("annotation.api_consensus")), *_project_urls]
