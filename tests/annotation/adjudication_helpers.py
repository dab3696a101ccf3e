"""Adjudication URLs for the permission matrix's world (see tests/test_permission_matrix.py)."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse

ADJUDICATION_NAMES = (
    "region-adjudication",
    "region-agreement-map",
    "adjudicate-region",
    "adjudication-queue-page",
)


def matrix_url(world: dict, name: str) -> str:
    """The URL of an adjudication page or endpoint in the matrix's world.

    The agreement-map row needs a consensus run: the assignee submits a square on the world's
    region (k = 1) and the region is merged. Skips while config/urls.py does not route the
    adjudication URLs yet (``path("", include("annotation.adjudication_urls"))``).
    """
    from annotation.models import LabelClass
    from annotation.services.merge import merge_region
    from tests.annotation.merge_helpers import submit

    region = world["region"]
    try:
        reverse("adjudicate-region", kwargs={"region_id": region.pk})
    except NoReverseMatch:
        pytest.skip("config/urls.py does not include annotation.adjudication_urls yet")
    if name == "region-agreement-map":
        label = LabelClass.objects.get(project=world["project"], name="tumour")
        submit(region, world["users"]["assignee"], [(300, 300, 100)], label)
        assert merge_region(region_id=region.pk) is not None
    if name == "adjudicate-region":
        return reverse(name, kwargs={"region_id": region.pk})
    if name == "adjudication-queue-page":
        return reverse(name, kwargs={"project_id": world["project"].pk})
    return reverse(name, kwargs={"pk": region.pk})
