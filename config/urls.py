"""Top-level URLs: web pages, the REST API and its schema."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from annotation import setup_pages
from annotation.api import MembershipViewSet, ProjectViewSet
from annotation.api_campaign import AssignmentViewSet, LabelClassViewSet, RegionViewSet
from annotation.auth_api import TokenView
from annotation.auth_pages import ThrottledPasswordResetView
from config import api_docs
from slides.api import SlideViewSet

router = DefaultRouter()
router.register("slides", SlideViewSet, basename="slide")
router.register("projects", ProjectViewSet, basename="project")
router.register(
    r"projects/(?P<project_pk>[0-9]+)/members", MembershipViewSet, basename="project-member"
)
router.register(
    r"projects/(?P<project_pk>[0-9]+)/label-classes",
    LabelClassViewSet,
    basename="project-label-class",
)
router.register("regions", RegionViewSet, basename="region")
router.register("assignments", AssignmentViewSet, basename="assignment")

campaign_urls = [
    path("", setup_pages.campaign_setup, name="campaign-setup"),
    path("classes/", setup_pages.add_class, name="campaign-add-class"),
    path("invite/", setup_pages.invite, name="campaign-invite"),
    path("seed/", setup_pages.seed, name="campaign-seed"),
    path("guideline-images/", setup_pages.add_guideline_image, name="campaign-add-image"),
    path(
        "guideline-images/<int:image_id>/",
        setup_pages.guideline_image,
        name="campaign-guideline-image",
    ),
    path("members/<int:membership_id>/exclude/", setup_pages.exclude, name="campaign-exclude"),
    path("assignments/<int:assignment_id>/release/", setup_pages.release, name="campaign-release"),
    path(
        "assignments/<int:assignment_id>/reassign/", setup_pages.reassign, name="campaign-reassign"
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # Every login path (these pages, /admin/login/, the token endpoint) is guarded in
    # authenticate() itself: annotation/login_guard.py.
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Reset e-mails are rate-limited: this page answers before django.contrib.auth.urls' own.
    path(
        "accounts/password_reset/",
        ThrottledPasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include(router.urls)),
    path("api/", include("annotation.api_consensus")),
    path("api/", include("learning.api")),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs.swagger_view, name="api-docs"),
    path("api/redoc/", api_docs.redoc_view, name="api-redoc"),
    path("projects/<int:project_id>/setup/", include(campaign_urls)),
    path("", include("annotation.urls")),
    path("", include("annotation.adjudication_urls")),
    path("", include("annotation.dashboard_urls")),
    path("", include("learning.urls_exports")),
    path("", include("learning.urls")),
    path("", include("slides.urls")),
]

handler400 = "config.bodylimit.bad_request"  # a body over the limit: 413, not 400
handler404 = "config.errors.not_found"
