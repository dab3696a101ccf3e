"""Adjudication routes: the expert pages and their API (one include at the site root).

In config/urls.py: ``path("", include("annotation.adjudication_urls"))``.
"""

from __future__ import annotations

from django.urls import path

from annotation import adjudication_pages
from annotation.api_adjudication import AgreementMapView, RegionAdjudicationView

urlpatterns = [
    path(
        "api/regions/<int:pk>/adjudication/",
        RegionAdjudicationView.as_view(),
        name="region-adjudication",
    ),
    path(
        "api/regions/<int:pk>/agreement-map.png",
        AgreementMapView.as_view(),
        name="region-agreement-map",
    ),
    path("adjudicate/<int:region_id>/", adjudication_pages.adjudicate, name="adjudicate-region"),
    path(
        "projects/<int:project_id>/adjudication/",
        adjudication_pages.queue,
        name="adjudication-queue-page",
    ),
]
