"""Writes on slides: registration, ingest, manual mpp, access records."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image

from config.tasks import attempt_claim
from slides import deepzoom
from slides.models import MppSource, Slide, SlideAccess, SlideStatus
from slides.paths import resolve_slide_path
from slides.readers import SLIDE_ERRORS

logger = logging.getLogger(__name__)


def case_key_from_name(name: str, pattern: str | None) -> str:
    """The case key a regex finds in a file name: its first group, or the whole match."""
    if not pattern:
        return ""
    match = re.search(pattern, name)
    if match is None:
        return ""
    return match.group(1) if match.groups() else match.group(0)


def slide_register(
    *,
    path: str,
    created_by: object | None = None,
    case_key: str = "",
    uploaded: bool = False,
    roots: list[Path] | None = None,
    within: QuerySet[Slide] | None = None,
) -> tuple[Slide, bool]:
    """Register a file under ``SLIDE_ROOTS`` (or ``roots``); ingest is queued on commit.

    A slide row belongs to one project (``annotation.ProjectSlide``), so "already registered"
    is looked up only ``within`` the caller's project's slides; by default among rows that no
    project holds yet. Another project's row for the same file is never returned: the file gets
    a row of its own, with its own ingest, mpp, case key and access log. Registering the same
    file twice within the scope returns the existing slide (``created`` is False).
    Raises ``PathNotAllowed`` for traversal, missing files and paths outside the roots.
    """
    allowed_roots = roots if roots is not None else [*settings.SLIDE_ROOTS]
    if uploaded:
        allowed_roots = [*allowed_roots, settings.SLIDE_UPLOAD_ROOT]
    resolved = resolve_slide_path(path, allowed_roots)
    # The reverse relation matched by name: slides/ does not import the annotation app.
    scope = within if within is not None else Slide.objects.filter(projects__isnull=True)
    with transaction.atomic():
        slide = scope.filter(path=str(resolved)).order_by("pk").first()
        if slide is not None:
            return slide, False
        slide = Slide.objects.create(
            path=str(resolved),
            name=resolved.name,
            case_key=case_key,
            created_by=created_by,
            uploaded=uploaded,
        )
        _enqueue_ingest(slide.pk)
    return slide, True


def _enqueue_ingest(slide_id: int) -> None:
    from slides.tasks import ingest_slide

    ingest_slide.delay_on_commit(slide_id)


def slide_retry_ingest(*, slide: Slide) -> Slide:
    """Put a FAILED slide back to PENDING with a fresh attempt count, and queue its ingest."""
    with transaction.atomic():
        Slide.objects.filter(pk=slide.pk).update(
            status=SlideStatus.PENDING, status_reason="", ingest_attempts=0
        )
        _enqueue_ingest(slide.pk)
    slide.refresh_from_db()
    return slide


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _float_property(properties: dict[str, str], key: str) -> float | None:
    try:
        value = float(properties[key])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _media_dir(slide_id: int) -> Path:
    directory = settings.MEDIA_ROOT / "slides" / str(slide_id)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def slide_ingest(*, slide_id: int) -> Slide | None:
    """Read a PENDING slide's metadata, thumbnail, tissue mask and deep-zoom tiles.

    Safe to run twice and to be killed: the attempt is claimed with a conditional update and
    capped (a file that crashes the reader each time ends FAILED, not in a loop), outputs are
    written atomically to fixed paths, and the final write only moves PENDING to READY/FAILED.
    Returns the slide, or None when there was nothing to do.
    """
    max_attempts = settings.CELERY_TASK_MAX_ATTEMPTS
    pending = Slide.objects.filter(pk=slide_id, status=SlideStatus.PENDING)
    if not attempt_claim(pending, field="ingest_attempts"):
        gave_up = Slide.objects.filter(pk=slide_id, status=SlideStatus.PENDING).update(
            status=SlideStatus.FAILED,
            status_reason=(
                f"Ingest stopped after {max_attempts} attempts: the reader process died each time."
            ),
        )
        if gave_up:
            logger.error("slide %s failed after %s attempts", slide_id, max_attempts)
        return Slide.objects.filter(pk=slide_id).first()
    slide = Slide.objects.get(pk=slide_id)
    try:
        fields = _read_slide(slide)
    except SLIDE_ERRORS as exc:
        reason = _readable_reason(exc)
        logger.warning("slide %s (%s) failed ingest: %s", slide_id, slide.path, reason)
        Slide.objects.filter(pk=slide_id, status=SlideStatus.PENDING).update(
            status=SlideStatus.FAILED, status_reason=reason
        )
    else:
        Slide.objects.filter(pk=slide_id, status=SlideStatus.PENDING).update(
            status=SlideStatus.READY, status_reason="", **fields
        )
    slide.refresh_from_db()
    return slide


def _readable_reason(exc: BaseException) -> str:
    import openslide

    if isinstance(exc, FileNotFoundError):
        return "The slide file is missing."
    if isinstance(exc, openslide.OpenSlideUnsupportedFormatError):
        return "OpenSlide does not recognise this file as a whole-slide image."
    if isinstance(exc, openslide.OpenSlideError):
        return f"OpenSlide could not read this file: {exc}"
    return f"The slide could not be read: {exc}"


def _read_slide(slide: Slide) -> dict[str, object]:
    """Everything ingest learns from the file; raises one of SLIDE_ERRORS on a bad file."""
    import openslide

    path = Path(slide.path)
    if path.stat().st_size == 0:
        raise ValueError("the file is empty (0 bytes)")
    # A fresh handle, not the shared cache: a file that fails here must leave no handle behind.
    with openslide.OpenSlide(str(path)) as handle:
        props = dict(handle.properties)
        mpp_x = _float_property(props, openslide.PROPERTY_NAME_MPP_X)
        mpp_y = _float_property(props, openslide.PROPERTY_NAME_MPP_Y)
        objective = _float_property(props, openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        _check_thumbnail_source(handle)
        thumb = handle.get_thumbnail((settings.THUMBNAIL_MAX_SIDE, settings.THUMBNAIL_MAX_SIDE))
        geometry = deepzoom.deepzoom_geometry(handle)
        fields: dict[str, object] = {
            "vendor": props.get(openslide.PROPERTY_NAME_VENDOR, "") or "",
            "width": handle.dimensions[0],
            "height": handle.dimensions[1],
            "level_count": handle.level_count,
            "level_dimensions": [list(d) for d in handle.level_dimensions],
            "level_downsamples": [float(d) for d in handle.level_downsamples],
            "objective_power": objective,
            "associated_images": sorted(handle.associated_images.keys()),
            "deepzoom": geometry,
        }
    if slide.mpp_source != MppSource.MANUAL:
        fields.update(
            mpp_x=mpp_x,
            mpp_y=mpp_y,
            mpp_source=MppSource.FILE if (mpp_x or mpp_y) else MppSource.NONE,
        )
    checksum = _sha256(path)
    media = _media_dir(slide.pk)
    thumb_rgb = thumb.convert("RGB")
    thumb_path = media / "thumbnail.png"
    _save_png_atomic(thumb_rgb, thumb_path)
    # Imported here: scikit-image is heavy and only ingest (in the worker) needs it.
    from slides.tissue import tissue_mask

    mask = tissue_mask(np.asarray(thumb_rgb))
    mask_path = media / "tissue.png"
    _save_png_atomic(Image.fromarray((mask * 255).astype(np.uint8)), mask_path)
    report = deepzoom.prebuild_tiles(
        slide.pk,
        checksum,
        str(path),
        geometry["level_tiles"],  # type: ignore[arg-type]
        settings.TILE_PREBUILD_MAX_TILES,
    )
    fields.update(
        checksum=checksum,
        file_size=path.stat().st_size,
        thumbnail=str(thumb_path),
        tissue_mask=str(mask_path),
        tissue_fraction=float(mask.mean()),
        tiles_prebuilt=report.tiles,
        tiles_prebuild_seconds=report.seconds,
        tiles_prebuild_bytes=report.bytes,
    )
    return fields


def _check_thumbnail_source(handle: object) -> None:
    """Refuse a slide whose thumbnail would be read from a level too large to hold in memory.

    OpenSlide reads a thumbnail from the pyramid level nearest its size; a file with huge
    dimensions and no pyramid (a crafted 100k x 100k TIFF of a few MB, or a flat scan) would
    make the worker allocate tens of gigabytes. ``ValueError`` marks the slide FAILED.
    """
    side = settings.THUMBNAIL_MAX_SIDE
    downsample = max(handle.dimensions[0] / side, handle.dimensions[1] / side, 1.0)
    level = handle.get_best_level_for_downsample(downsample)
    width, height = handle.level_dimensions[level]
    if width * height > settings.SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS:
        raise ValueError(
            f"its smallest usable level is {width}x{height} pixels, over "
            f"SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS ({settings.SLIDE_THUMBNAIL_SOURCE_MAX_PIXELS}); "
            "convert it to a pyramidal format (e.g. a tiled, multi-resolution TIFF)"
        )


def _save_png_atomic(image: Image.Image, path: Path) -> None:
    """Write under a unique temporary name, then rename: two ingests of the same slide running
    at once (a redelivered task beside the original) must not rename each other's file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, "PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def slide_set_mpp(*, slide: Slide, mpp: float) -> Slide:
    """A manager's mpp for a slide whose file lacks it (or states it wrongly)."""
    if not (math.isfinite(mpp) and 0.01 <= mpp <= 100):
        raise ValueError("mpp must be between 0.01 and 100 micrometres per pixel")
    Slide.objects.filter(pk=slide.pk).update(mpp_x=mpp, mpp_y=mpp, mpp_source=MppSource.MANUAL)
    slide.refresh_from_db()
    return slide


def slide_record_access(*, user_id: int, slide_id: int) -> None:
    """Record that a user opened a slide today; a cache marker keeps tile requests query-free."""
    today = timezone.localdate()
    marker = f"slide-access:{user_id}:{slide_id}:{today.isoformat()}"
    if cache.get(marker):
        return
    SlideAccess.objects.get_or_create(user_id=user_id, slide_id=slide_id, day=today)
    cache.set(marker, True, timeout=int(dt.timedelta(hours=25).total_seconds()))
