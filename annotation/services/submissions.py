"""Drafts, submission, versioned edits and their audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation.geometry import GeometryError, clean_geometry
from annotation.models import (
    Assignment,
    AssignmentStatus,
    LabelClass,
    Membership,
    Outcome,
    Region,
    RegionOrigin,
    Role,
    Shape,
    Submission,
    SubmissionHistory,
    SubmissionStatus,
)
from annotation.overlap import shapes_dice
from annotation.services.merge import merge_enqueue_if_complete


class SubmissionError(ValueError):
    """A write that breaks a rule (already submitted, unknown class, bad geometry)."""


class AssignmentClosed(SubmissionError):
    """The slot no longer takes work (released, reassigned, expired, or its member excluded):
    answer 409 and change nothing, so freed slots never yield an extra counted submission."""


class StaleVersion(Exception):
    """The client's If-Match version is not the current one: answer 412."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


@dataclass(frozen=True)
class ShapeInput:
    label_class_id: int
    geometry: dict[str, Any]


@dataclass(frozen=True)
class SaveResult:
    submission: Submission
    repairs: list[dict[str, Any]]  # per shape index: what was repaired or clipped


def _lock_open_assignment(assignment: Assignment) -> Assignment:
    """Re-read the slot under a row lock and refuse it unless it still takes work.

    Only an active assignment, not past its ``expires_at`` (expired at once, before any sweep
    marks it), of a member who is not excluded may be saved or submitted. The lock orders a
    save against a manager's concurrent release or reassignment of the same slot.
    """
    # of=("self",): lock the slot's row only. Without it PostgreSQL also locks the joined
    # region and project rows, and every save of a project queues behind the others.
    current = (
        Assignment.objects.select_for_update(of=("self",), no_key=True)
        .select_related("region__project")
        .filter(pk=assignment.pk)
        .first()
    )
    if current is None:
        raise AssignmentClosed("this assignment no longer exists")
    # The member's standing first: an exclusion also releases the slot, and says more.
    membership = Membership.objects.filter(
        project_id=current.region.project_id, user_id=current.annotator_id
    ).first()
    if membership is None:
        raise AssignmentClosed("you are no longer a member of this project")
    if membership.excluded:
        raise AssignmentClosed("you are excluded from this project; your work no longer counts")
    if current.status != AssignmentStatus.ACTIVE:
        reason = {
            AssignmentStatus.SUBMITTED: "this assignment is already submitted",
            AssignmentStatus.EXPIRED: "this assignment has expired; ask for the next region",
            AssignmentStatus.RELEASED: "a manager released this assignment; it takes no more work",
        }.get(current.status, f"this assignment is {current.status}")
        raise AssignmentClosed(reason)
    if current.expires_at is not None and current.expires_at <= timezone.now():
        raise AssignmentClosed("this assignment has expired; ask for the next region")
    return current


def submission_for_assignment(*, assignment: Assignment) -> Submission:
    """The annotator's draft for an assignment, created on first use."""
    submission, _ = Submission.objects.get_or_create(
        region=assignment.region,
        annotator=assignment.annotator,
        defaults={"assignment": assignment},
    )
    return submission


def _clean_shapes(submission: Submission, shapes: list[ShapeInput]) -> tuple[list[Shape], list]:
    project = submission.region.project
    classes = {c.pk: c for c in LabelClass.objects.filter(project=project)}
    cleaned: list[Shape] = []
    repairs: list[dict[str, Any]] = []
    for index, item in enumerate(shapes):
        label = classes.get(item.label_class_id)
        if label is None:
            raise SubmissionError(
                f"shape {index}: class {item.label_class_id} is not in this project"
            )
        if label.is_background:
            raise SubmissionError(f"shape {index}: the background class is not drawn")
        try:
            clean = clean_geometry(
                item.geometry,
                submission.region.bounds,
                max_vertices=settings.ANNOTATION_MAX_VERTICES,
            )
        except GeometryError as exc:
            raise SubmissionError(f"shape {index}: {exc}") from None
        if clean.repairs or clean.clipped:
            repairs.append(
                {"shape": index, "repairs": list(clean.repairs), "clipped": clean.clipped}
            )
        cleaned.append(
            Shape(
                label_class=label,
                geometry=clean.geometry,
                area=clean.area,
                vertex_count=clean.vertex_count,
            )
        )
    return cleaned, repairs


def _snapshot(submission: Submission) -> dict[str, Any]:
    return {
        "status": submission.status,
        "outcome": submission.outcome,
        "cannot_assess_reason": submission.cannot_assess_reason,
        "region_label": submission.region_label_id,
        "counts": submission.counts,
        "shapes": [
            {"label_class": s.label_class_id, "geometry": s.geometry}
            for s in submission.shapes.order_by("pk")
        ],
    }


def _history(submission: Submission, user: object | None, action: str, reason: str = "") -> None:
    SubmissionHistory.objects.create(
        submission=submission,
        version=submission.version,
        user=user,
        action=action,
        reason=reason,
        snapshot=_snapshot(submission),
    )


def _bump_version(submission: Submission, expected_version: int, **fields: Any) -> None:
    """``UPDATE ... WHERE version = expected``: the losing one of two racing writes gets 412."""
    updated = Submission.objects.filter(pk=submission.pk, version=expected_version).update(
        version=F("version") + 1, updated_at=timezone.now(), **fields
    )
    if not updated:
        current = (
            Submission.objects.filter(pk=submission.pk).values_list("version", flat=True).first()
        )
        raise StaleVersion(current or 0)


@transaction.atomic
def submission_save_draft(
    *,
    assignment: Assignment,
    expected_version: int,
    shapes: list[ShapeInput],
    region_label_id: int | None = None,
    time_spent_seconds: float = 0.0,
    shown: dict[str, Any] | None = None,
) -> SaveResult:
    """Autosave: replace the draft's shapes. Drafts are private and not audited.

    The first save creates the draft at version 1, the version a client reads before it exists.
    """
    assignment = _lock_open_assignment(assignment)
    submission = submission_for_assignment(assignment=assignment)
    if submission.status != SubmissionStatus.DRAFT:
        raise SubmissionError("this region is already submitted; submission is final")
    cleaned, repairs = _clean_shapes(submission, shapes)
    region_label = _region_label(submission, region_label_id)
    _bump_version(
        submission,
        expected_version,
        region_label=region_label,
        time_spent_seconds=max(0.0, float(time_spent_seconds)),
        shown=shown if shown is not None else submission.shown,
    )
    submission.shapes.all().delete()
    for shape in cleaned:
        shape.submission = submission
    Shape.objects.bulk_create(cleaned)
    submission.refresh_from_db()
    return SaveResult(submission, repairs)


def _region_label(submission: Submission, region_label_id: int | None) -> LabelClass | None:
    if region_label_id is None:
        return None
    label = LabelClass.objects.filter(pk=region_label_id, project=submission.region.project).first()
    if label is None:
        raise SubmissionError(f"class {region_label_id} is not in this project")
    return label


@transaction.atomic
def submission_submit(
    *,
    assignment: Assignment,
    expected_version: int,
    outcome: str,
    user: object,
    cannot_assess_reason: str = "",
) -> Submission:
    """Make the draft final. "nothing" and "cannot_assess" must be chosen explicitly."""
    assignment = _lock_open_assignment(assignment)
    submission = submission_for_assignment(assignment=assignment)
    if submission.status != SubmissionStatus.DRAFT:
        raise SubmissionError("this region is already submitted")
    if outcome not in Outcome.values:
        raise SubmissionError(f"outcome must be one of {', '.join(Outcome.values)}")
    project = submission.region.project
    has_shapes = submission.shapes.exists()
    if outcome == Outcome.SHAPES:
        if project.polygon_annotations and not has_shapes and not project.region_labels:
            raise SubmissionError(
                "no shapes drawn: draw at least one, or submit as nothing or cannot_assess"
            )
        if project.region_labels and submission.region_label_id is None:
            raise SubmissionError("this project asks for a class for the whole region")
    elif has_shapes:
        raise SubmissionError(f"a region submitted as {outcome} must have no shapes; delete them")
    if outcome == Outcome.CANNOT_ASSESS and not cannot_assess_reason.strip():
        raise SubmissionError("say why the region cannot be assessed")
    now = timezone.now()
    _bump_version(
        submission,
        expected_version,
        status=SubmissionStatus.SUBMITTED,
        outcome=outcome,
        cannot_assess_reason=cannot_assess_reason.strip()[:300],
        submitted_at=now,
    )
    # The slot locked above is the one that closes (a draft keeps the id of the slot it was
    # started in; the (region, annotator) constraint makes that the same slot).
    Assignment.objects.filter(pk=assignment.pk, status=AssignmentStatus.ACTIVE).update(
        status=AssignmentStatus.SUBMITTED, submitted_at=now
    )
    submission.refresh_from_db()
    _history(submission, user, "submitted")
    if submission.region.origin == RegionOrigin.GOLD:
        _score_gold(submission)
    # Consensus: once every slot of the region is submitted, merge it (queued on commit).
    merge_enqueue_if_complete(region=submission.region)
    return submission


def _gold_reference(region: Region) -> Submission | None:
    """The expert's (or manager's) submitted outline on a gold region."""
    return (
        Submission.objects.filter(
            region=region,
            status=SubmissionStatus.SUBMITTED,
            annotator__memberships__project=region.project,
            annotator__memberships__role__in=[Role.EXPERT, Role.MANAGER],
        )
        .order_by("submitted_at")
        .first()
    )


def _score_gold(submission: Submission) -> None:
    """Dice against the expert's outline; qualifies a student after enough good gold regions."""
    reference = _gold_reference(submission.region)
    if reference is None or reference.pk == submission.pk:
        return
    dice = shapes_dice(
        [(s.label_class_id, s.geometry) for s in submission.shapes.all()],
        [(s.label_class_id, s.geometry) for s in reference.shapes.all()],
    )
    Submission.objects.filter(pk=submission.pk).update(gold_dice=dice)
    project = submission.region.project
    membership = Membership.objects.filter(project=project, user=submission.annotator).first()
    if membership is None or membership.qualified_at or not project.qualification_gold_regions:
        return
    scores = list(
        Submission.objects.filter(
            region__project=project, annotator=submission.annotator, gold_dice__isnull=False
        ).values_list("gold_dice", flat=True)
    )
    if (
        len(scores) >= project.qualification_gold_regions
        and sum(scores) / len(scores) >= project.qualification_min_dice
    ):
        Membership.objects.filter(pk=membership.pk).update(qualified_at=timezone.now())


@transaction.atomic
def submission_set_counts(
    *, submission: Submission, counts: bool, user: object, reason: str
) -> None:
    """A manager's exclusion (or re-inclusion): audited, versioned."""
    if submission.counts == counts:
        return
    _bump_version(submission, submission.version, counts=counts)
    submission.refresh_from_db()
    _history(submission, user, "excluded" if not counts else "included", reason)
