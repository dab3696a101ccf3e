"""Writes on research exports: requesting one, and building it (claimed, streamed, published).

A build is safe to run twice and to be killed:

- it claims the row with a conditional UPDATE (queued, or building under an expired lease) that
  counts ``attempts``; past CELERY_TASK_MAX_ATTEMPTS the export ends FAILED instead of looping;
- the archive is streamed to a temporary file (one region in memory at a time), fsynced, then
  linked to its final name (which carries the hash) and only then is the row marked READY, under
  the claim's lease token: a second delivery finds READY and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation.interop.base import ImportedShape
from annotation.interop.qupath import write_geojson
from annotation.models import LabelClass, Project
from annotation.pseudonyms import project_secret
from annotation.selectors_consensus import AcceptedRegion, accepted_regions
from learning.exports.archive import DeterministicZip
from learning.exports.config import ConfigError, ExportConfig
from learning.exports.gather import (
    IGNORE,
    Namer,
    Target,
    final_shapes,
    release,
)
from learning.exports.gather import region_payload as read_payload
from learning.exports.provenance import (
    annotator_rows,
    class_rows,
    model_version_rows,
    region_row,
    slide_row,
)
from learning.exports.readme import archive_readme
from learning.exports.splits import assign_splits
from learning.exports.writer import ExportWriter, PatchSpec, palette_bytes
from learning.models import ExportStatus, TrainingExport

logger = logging.getLogger(__name__)

EXPORT_TASK = "learning.export_build"
FORMAT_VERSION = 1


# --- requesting ----------------------------------------------------------------------------


def export_config_check(*, project: Project, data: dict[str, Any]) -> ExportConfig:
    """Parse the requester's choices against the project (its classes); raises ConfigError."""
    config = ExportConfig.from_dict(data)
    classes = LabelClass.objects.filter(project=project, is_background=False).order_by(
        "order", "id"
    )
    own = [c.pk for c in classes]
    if not config.class_ids:
        config = ExportConfig(**{**config.as_dict(), "class_ids": own})
    stray = sorted(set(config.class_ids) - set(own))
    if stray:
        raise ConfigError(f"class_ids {stray} are not foreground classes of this project")
    if not config.class_ids:
        raise ConfigError("the project has no foreground classes to export")
    if len(config.class_ids) >= IGNORE:
        raise ConfigError(f"at most {IGNORE - 1} classes fit the masks")
    return config


@transaction.atomic
def export_create(*, project: Project, user: object | None, data: dict[str, Any]) -> TrainingExport:
    """Record an export request and queue its build once the transaction commits."""
    from celery import current_app

    config = export_config_check(project=project, data=data)
    export = TrainingExport.objects.create(
        project=project,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
        config=config.as_dict(),
    )
    transaction.on_commit(lambda: current_app.send_task(EXPORT_TASK, args=[export.pk]))
    return export


# --- claiming ------------------------------------------------------------------------------


def _claim(export_id: int) -> str | None:
    """Take the build: a lease token, or None when it is done, failed, or another holds it."""
    now = timezone.now()
    token = uuid.uuid4().hex
    lease = dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    max_attempts = settings.CELERY_TASK_MAX_ATTEMPTS
    claimable = Q(status=ExportStatus.QUEUED) | Q(
        status=ExportStatus.BUILDING, lease_expires__lt=now
    )
    claimed = TrainingExport.objects.filter(
        claimable, pk=export_id, attempts__lt=max_attempts
    ).update(
        status=ExportStatus.BUILDING,
        attempts=F("attempts") + 1,
        lease_token=token,
        lease_expires=now + lease,
        started_at=now,
        progress=0.0,
    )
    if claimed:
        return token
    gave_up = TrainingExport.objects.filter(
        claimable, pk=export_id, attempts__gte=max_attempts
    ).update(
        status=ExportStatus.FAILED,
        failed_reason=f"build stopped after {max_attempts} attempts: its worker died each time",
        finished_at=now,
    )
    if gave_up:
        logger.error("export %s gave up after %s attempts", export_id, max_attempts)
    return None


def lease_remaining(export_id: int) -> float | None:
    """Seconds left on a live build's lease (None when nobody builds it)."""
    row = TrainingExport.objects.filter(pk=export_id, status=ExportStatus.BUILDING).first()
    if row is None or row.lease_expires is None:
        return None
    return max(0.0, (row.lease_expires - timezone.now()).total_seconds())


# --- building ------------------------------------------------------------------------------


def _selected(config: ExportConfig, regions: list[AcceptedRegion]) -> list[AcceptedRegion]:
    """The regions whose answer counts under the label policy (an expert's always does)."""
    chosen = []
    for accepted in regions:
        if not accepted.region.slide.mpp:
            continue
        if accepted.adjudication is not None:
            chosen.append(accepted)
        elif config.labels == "consensus" and accepted.run.dice >= config.min_agreement:
            chosen.append(accepted)
    return sorted(chosen, key=lambda a: (a.region.slide_id, a.region.pk))


def _geojson(project: Project, shapes: list[tuple[str, dict[str, Any]]], key: str) -> bytes:
    return write_geojson(
        [
            ImportedShape(geometry, name, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{i}")))
            for i, (name, geometry) in enumerate(shapes)
        ]
    )


def _progress(export_id: int, token: str, done: int, total: int) -> None:
    TrainingExport.objects.filter(pk=export_id, lease_token=token).update(
        progress=round(done / total, 4) if total else 1.0,
        progress_text=f"{done} of {total} regions written",
    )


def build_archive(
    *, project: Project, config: ExportConfig, handle: Any, progress: Any = None
) -> dict[str, Any]:
    """Write the whole archive to ``handle`` (a binary file); returns hash, counts, lineage."""
    namer = Namer(project_secret(project), project.pseudonymize_slides)
    regions = _selected(config, accepted_regions(project))
    mpp = config.mpp or project.target_mpp
    slides = {a.region.slide_id: a.region.slide for a in regions}
    group = {
        sid: (namer.slide(s) if config.split_by == "slide" else namer.case(s))
        for sid, s in slides.items()
    }
    split_of_group = assign_splits(list(group.values()), config.fractions, config.seed)
    split_of = {sid: split_of_group[g] for sid, g in group.items()}
    classes = class_rows(project, config.class_ids)
    palette = palette_bytes(
        [tuple(int(c["color"].lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)) for c in classes],
        IGNORE,
    )
    spec = PatchSpec(config.patch_size, config.stride, config.image_format)
    archive = DeterministicZip(handle)
    categories = [{"id": c["index"], "name": c["name"]} for c in classes[1:]]
    target = Target(mpp=mpp, class_ids=config.class_ids)
    names = {c["label_class"]: c["name"] for c in classes[1:]}
    region_rows, user_ids, pending = [], set(), []
    with tempfile.TemporaryDirectory(dir=_workdir()) as workdir:
        writer = ExportWriter(
            archive,
            spec,
            categories,
            palette,
            workdir,
            {"description": project.name, "licence": project.license_text},
        )
        try:
            for done, accepted in enumerate(regions, start=1):
                slide = accepted.region.slide
                payload = read_payload(accepted, target, namer, split_of[slide.pk])
                writer.add_region(payload)
                region_rows.append(
                    region_row(accepted, namer, payload.split, [n for n, _ in payload.raw])
                )
                user_ids.update(_people(accepted))
                pending += [
                    (names[s["label_class"]], s["geometry"])
                    for s in final_shapes(accepted)
                    if s["label_class"] in names
                ]
                last = done == len(regions) or regions[done].region.slide_id != slide.pk
                if last:
                    name = namer.slide(slide)
                    archive.add_bytes(f"geojson/{name}.geojson", _geojson(project, pending, name))
                    pending = []
                del payload
                release(accepted)
                if progress is not None:
                    progress(done, len(regions))
            counts = writer.finish()
        finally:
            writer.close()
    run_ids = {a.run.pk for a in regions if a.run is not None and a.adjudication is None}
    decision_ids = {a.adjudication.pk for a in regions if a.adjudication is not None}
    manifest = {
        "format": "histocrowd-training-export",
        "format_version": FORMAT_VERSION,
        "project": {"name": project.name, "target_mpp": project.target_mpp},
        "licence": project.license_text,
        "citation": project.citation,
        "config": config.as_dict(),
        "resolution": {"mpp": mpp, "project_target_mpp": project.target_mpp},
        "classes": classes,
        "ignore_value": IGNORE,
        "image_format": config.image_format,
        "splits": {
            "by": config.split_by,
            "seed": config.seed,
            "fractions": list(config.fractions),
            "groups": {
                s: sorted({g for g, v in split_of_group.items() if v == s})
                for s in ("train", "val", "test")
            },
        },
        "slides": sorted(
            (slide_row(s, namer, split_of[sid]) for sid, s in slides.items()),
            key=lambda r: r["id"],
        ),
        "regions": region_rows,
        "annotators": annotator_rows(project, user_ids, namer),
        "model_versions": model_version_rows(project, run_ids, decision_ids),
        "counts": counts,
    }
    archive.add_bytes("manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
    archive.add_bytes("README.md", archive_readme(manifest).encode())
    export_hash = archive.close()
    return {
        "hash": export_hash,
        "counts": counts,
        "consensus_runs": sorted(run_ids),
        "adjudications": sorted(decision_ids),
        "model_versions": [v["id"] for v in manifest["model_versions"]],
    }


def _people(accepted: AcceptedRegion) -> set[int]:
    people = set()
    if accepted.run is not None:
        people.update(row[2] for row in accepted.run.inputs)
    if accepted.adjudication is not None and accepted.adjudication.expert_id:
        people.add(accepted.adjudication.expert_id)
    return people


def _workdir() -> Path:
    folder = Path(settings.MEDIA_ROOT) / "exports" / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def export_build(*, export_id: int) -> TrainingExport | None:
    """Build the export if it is not built yet; returns the row (None when it is gone)."""
    token = _claim(export_id)
    export = TrainingExport.objects.select_related("project").filter(pk=export_id).first()
    if export is None or token is None:
        return export
    project = export.project
    folder = Path(settings.MEDIA_ROOT) / "exports" / str(project.pk)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".tmp-{export.pk}-{token}.zip"
    # Any other temporary file of this export is a killed build's: we hold the lease now.
    for stale in folder.glob(f".tmp-{export.pk}-*.zip"):
        stale.unlink(missing_ok=True)
    try:
        config = export_config_check(project=project, data=export.config)
        with open(temp, "wb") as handle:
            result = build_archive(
                project=project,
                config=config,
                handle=handle,
                progress=lambda done, total: _progress(export.pk, token, done, total),
            )
            handle.flush()
            os.fsync(handle.fileno())
        final = folder / f"export-{export.pk}-{result['hash'][:16]}.zip"
        try:
            os.link(temp, final)  # atomic, and never replaces a file already published
        except FileExistsError:
            pass  # the same export built twice: same bytes (deterministic)
    except Exception as error:  # noqa: BLE001 - the row must say why, whatever went wrong
        logger.exception("export %s failed", export.pk)
        TrainingExport.objects.filter(pk=export.pk, lease_token=token).update(
            status=ExportStatus.FAILED,
            failed_reason=f"{type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(),
        )
        export.refresh_from_db()
        return export
    finally:
        temp.unlink(missing_ok=True)
    TrainingExport.objects.filter(
        pk=export.pk, lease_token=token, status=ExportStatus.BUILDING
    ).update(
        status=ExportStatus.READY,
        config=config.as_dict(),  # as built: the defaults filled in
        file_path=str(final.relative_to(settings.MEDIA_ROOT)),
        file_size=final.stat().st_size,
        export_hash=result["hash"],
        counts=result["counts"],
        consensus_runs=result["consensus_runs"],
        adjudications=result["adjudications"],
        model_versions=result["model_versions"],
        progress=1.0,
        progress_text="ready",
        finished_at=timezone.now(),
    )
    export.refresh_from_db()
    logger.info("export %s ready: %s", export.pk, export.export_hash)
    return export
