"""The project's URLs plus the dashboard pages, until config/urls.py includes them."""

from __future__ import annotations

from django.urls import include, path

from config.urls import urlpatterns as _project_urls

urlpatterns = [path("", include("annotation.dashboard_urls")), *_project_urls]
