"""Routes of the research exports: the page and the API.

In config/urls.py: ``path("", include("learning.urls_exports"))``.
"""

from __future__ import annotations

from django.urls import include, path

from learning.exports import api, pages

api_urls = [
    path(
        "projects/<int:project_pk>/exports/",
        api.ProjectExportsView.as_view(),
        name="project-training-exports",
    ),
    path("exports/<int:pk>/", api.ExportDetailView.as_view(), name="training-export-detail"),
    path(
        "exports/<int:pk>/download/",
        api.ExportDownloadView.as_view(),
        name="training-export-download",
    ),
    path(
        "exports/<int:pk>/lineage/",
        api.ExportLineageView.as_view(),
        name="training-export-lineage",
    ),
    path(
        "projects/<int:project_pk>/research/agreement/",
        api.ResearchAgreementView.as_view(),
        name="project-research-agreement",
    ),
    path(
        "projects/<int:project_pk>/research/model-versions/",
        api.ResearchModelVersionsView.as_view(),
        name="project-research-model-versions",
    ),
]

page_urls = (
    [path("projects/<int:project_id>/exports/", pages.export_page, name="page")],
    "exports",
)

urlpatterns = [
    path("api/", include(api_urls)),
    path("", include(page_urls)),
]
