"""Reads on slides, always through project membership (the ``access_*`` helpers).

slides/ is the ground floor: it matches the project relation by name (``projects__memberships``)
instead of importing the annotation app. Outsiders get 404, never 403, so that a slide's
existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import Http404

from slides.models import Slide, SlideStatus

# The role allowed to see label and macro images (they can carry patient identifiers).
MANAGER_ROLE = "manager"


def slides_visible_to(user: object) -> QuerySet[Slide]:
    """Slides in any project the user belongs to."""
    if not getattr(user, "is_authenticated", False):
        return Slide.objects.none()
    return Slide.objects.filter(projects__memberships__user=user).distinct()


def access_slide(user: object, slide_id: int) -> Slide:
    """The slide if the user is a member of a project holding it, else 404."""
    slide = slides_visible_to(user).filter(pk=slide_id).first()
    if slide is None:
        raise Http404("No such slide.")
    return slide


def user_manages_slide(user: object, slide_id: int) -> bool:
    return Slide.objects.filter(
        pk=slide_id, projects__memberships__user=user, projects__memberships__role=MANAGER_ROLE
    ).exists()


def access_slide_as_manager(user: object, slide_id: int) -> Slide:
    """The slide if the user manages a project holding it, else 404 (also for other members)."""
    if not getattr(user, "is_authenticated", False) or not user_manages_slide(user, slide_id):
        raise Http404("No such slide.")
    return Slide.objects.get(pk=slide_id)


@dataclass(frozen=True)
class TileAccess:
    """What the tile view needs about a slide, small enough to cache per (user, slide)."""

    path: str
    checksum: str
    level_tiles: tuple[tuple[int, int], ...]
    level_dimensions: tuple[tuple[int, int], ...]
    tile_size: int
    overlap: int
    mpp: float | None


def tile_access(user_id: int, slide_id: int) -> TileAccess | None:
    """Membership check + tile geometry in one indexed query, cached for a few seconds.

    Tiles arrive by the dozen per second per viewer; the short cache turns the per-tile check
    into a dictionary lookup while a revoked membership still takes effect within
    ``ACCESS_CHECK_CACHE_SECONDS``.
    """
    key = f"tile-access:{user_id}:{slide_id}"
    found = cache.get(key)
    if found is not None:
        return found
    row = (
        Slide.objects.filter(
            pk=slide_id, status=SlideStatus.READY, projects__memberships__user_id=user_id
        )
        .values_list("path", "checksum", "deepzoom", "mpp_x", "mpp_y")
        .first()
    )
    access: TileAccess | None = None
    if row is not None:
        path, checksum, dz, mpp_x, mpp_y = row
        mpp = (mpp_x + mpp_y) / 2 if mpp_x and mpp_y else (mpp_x or mpp_y)
        access = TileAccess(
            path=path,
            checksum=checksum,
            level_tiles=tuple(tuple(t) for t in dz["level_tiles"]),
            level_dimensions=tuple(tuple(d) for d in dz["level_dimensions"]),
            tile_size=dz["tile_size"],
            overlap=dz["overlap"],
            mpp=mpp,
        )
    if access is not None:
        # Only grants are cached: a refusal stays cheap to recompute, and a slide that turns
        # READY (or a member just added) must not wait for a cached "no" to expire.
        cache.set(key, access, timeout=settings.ACCESS_CHECK_CACHE_SECONDS)
    return access


def forget_tile_access(slide_id: int, user_ids: list[int]) -> None:
    """Drop cached answers after a membership or slide change."""
    cache.delete_many([f"tile-access:{uid}:{slide_id}" for uid in user_ids])
