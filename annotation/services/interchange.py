"""Importing annotation files onto a slide, and exporting a slide's annotations."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from annotation.geometry import GeometryError, clean_geometry
from annotation.interop import ImportedShape, read_annotations, write_annotations
from annotation.models import LabelClass, Project, SlideAnnotation, Submission, SubmissionStatus
from annotation.services.label_classes import label_classes_reserve
from slides.models import Slide

# Colours for classes an import creates (a file rarely carries one we can trust).
_PALETTE = [
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#46f0f0",
    "#f032e6",
    "#bcf60c",
    "#fabebe",
    "#008080",
]


@dataclass
class ImportReport:
    format: str
    imported: int = 0
    classes_created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    repaired: int = 0


@transaction.atomic
def annotations_import(
    *, project: Project, slide: Slide, data: bytes, filename: str, source: str, user: object
) -> ImportReport:
    """Shapes of a QuPath/ASAP/Aperio file onto ``slide``, attributed to ``source``.

    Each shape is validated like an annotator's (repaired with make_valid, clipped to the
    slide); shapes that cannot be used are listed in ``skipped`` with the reason. Raises
    ``InteropError`` (a ValueError) for a refused file: too large, too many shapes, unknown or
    unsupported format.
    """
    result = read_annotations(
        data,
        filename,
        max_bytes=settings.ANNOTATION_IMPORT_MAX_BYTES,
        max_shapes=settings.ANNOTATION_IMPORT_MAX_SHAPES,
    )
    report = ImportReport(format=result.format, skipped=list(result.skipped))
    classes = {c.name: c for c in LabelClass.objects.filter(project=project)}
    # All or nothing: a file naming more new classes than the project may still take is
    # refused before anything is written.
    new_names = {shape.class_name[:100] for shape in result.shapes} - set(classes)
    label_classes_reserve(project=project, adding=len(new_names))
    rows = []
    bounds = (0.0, 0.0, float(slide.width), float(slide.height))
    for index, shape in enumerate(result.shapes):
        try:
            clean = clean_geometry(
                shape.geometry, bounds, max_vertices=settings.ANNOTATION_MAX_VERTICES
            )
        except GeometryError as exc:
            report.skipped.append(f"shape {index} ({shape.class_name}): {exc}")
            continue
        if clean.repairs or clean.clipped:
            report.repaired += 1
        label = classes.get(shape.class_name[:100])
        if label is None:
            label = LabelClass.objects.create(
                project=project,
                name=shape.class_name[:100],
                color=_PALETTE[len(classes) % len(_PALETTE)],
                order=len(classes) + 1,
            )
            classes[label.name] = label
            report.classes_created.append(label.name)
        rows.append(
            SlideAnnotation(
                project=project,
                slide=slide,
                source=source,
                label_class=label,
                geometry=clean.geometry,
                area=clean.area,
                imported_by=user,
                file_name=filename[:255],
            )
        )
    SlideAnnotation.objects.bulk_create(rows)
    report.imported = len(rows)
    return report


def annotations_export(*, project: Project, slide: Slide, fmt: str, what: str) -> bytes:
    """A slide's imported shapes, or its counting submitted shapes, in ``fmt``."""
    shapes: list[ImportedShape] = []
    if what == "imported":
        for row in SlideAnnotation.objects.filter(project=project, slide=slide).select_related(
            "label_class"
        ):
            shapes.append(ImportedShape(row.geometry, row.label_class.name, f"import-{row.pk}"))
    else:
        submissions = Submission.objects.filter(
            region__project=project,
            region__slide=slide,
            status=SubmissionStatus.SUBMITTED,
            counts=True,
        ).prefetch_related("shapes__label_class")
        for submission in submissions:
            for shape in submission.shapes.all():
                shapes.append(
                    ImportedShape(
                        shape.geometry,
                        shape.label_class.name,
                        f"submission-{submission.pk}-shape-{shape.pk}",
                    )
                )
    return write_annotations(shapes, fmt)
