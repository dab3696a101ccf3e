"""Aggregate reads for the project dashboard and the students' gold feedback (filtered by role)."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Model, OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone

from annotation.models import (
    AnnotatorReliability,
    ConsensusRun,
    ConsensusStatus,
    LabelClass,
    Membership,
    Project,
    Region,
    RegionOrigin,
    Role,
    Submission,
    SubmissionStatus,
)
from annotation.selectors import access_project, role_in
from annotation.selectors_consensus import (
    ADJUDICATORS,
    CONSENSUS_READERS,
    adjudication_queue,
    final_answer_shapes,
    latest_runs,
)

HISTOGRAM_BINS = 10
QUEUE_PREVIEW = 5
RECENT_DAYS = 7
STEP_SAMPLE = 12


# --- agreement histogram ----------------------------------------------------------------------


@dataclass(frozen=True)
class Histogram:
    """Counts of values in ``[0, 1]`` over equal bins; the last bin includes 1.0."""

    edges: list[float]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


def histogram(values: list[float], bins: int = HISTOGRAM_BINS) -> Histogram:
    """Bin values in [0, 1]; rounding guards edges (0.3 lands in [0.3, 0.4), not [0.2, 0.3))."""
    counts = [0] * bins
    for value in values:
        if value is None or math.isnan(value):
            continue
        index = math.floor(round(min(max(value, 0.0), 1.0) * bins, 9))
        counts[min(index, bins - 1)] += 1
    return Histogram(edges=[round(i / bins, 6) for i in range(bins + 1)], counts=counts)


def agreement_histogram(project: Project) -> Histogram:
    """Mean pairwise Dice of every region's current consensus run."""
    return histogram(list(latest_runs(project).values_list("dice", flat=True)))


# --- where the regions are --------------------------------------------------------------------


@dataclass(frozen=True)
class Pipeline:
    """Non-gold regions by the step they wait at; ``gold`` counts the gold regions apart."""

    annotating: int = 0
    waiting_merge: int = 0
    needs_more: int = 0
    needs_adjudication: int = 0
    adjudicated: int = 0
    accepted: int = 0
    gold: int = 0
    samples: dict[str, list[int]] = field(default_factory=dict)  # first region ids per step

    @property
    def total(self) -> int:
        return (
            self.annotating
            + self.waiting_merge
            + self.needs_more
            + self.needs_adjudication
            + self.adjudicated
            + self.accepted
        )

    def steps(self) -> list[dict[str, Any]]:
        """The steps in order, each with its count and share of the non-gold regions (%)."""
        names = [
            ("annotating", "Being annotated"),
            ("waiting_merge", "Waiting for merge"),
            ("needs_more", "Waiting for more annotators"),
            ("needs_adjudication", "Waiting for an expert"),
            ("adjudicated", "Decided by an expert"),
            ("accepted", "Accepted"),
        ]
        total = self.total or 1
        return [
            {
                "key": key,
                "label": label,
                "count": getattr(self, key),
                "regions": self.samples.get(key, []),
                "share": round(100.0 * getattr(self, key) / total, 2),
            }
            for key, label in names
        ]


def region_pipeline(
    project: Project, queue_region_ids: set[int], decided_region_ids: set[int] | None = None
) -> Pipeline:
    """Where each region stands, from its submitted count and its current run's status.

    The regions in the adjudication queue wait for an expert, whatever their run says; other
    regions with an expert decision (or a run needing adjudication that left the queue) were
    decided. A region whose slots (k + extra) are all submitted waits for the merge until a run
    exists (or, after "needs more", until the extra annotator's work has been merged).
    """
    decided = decided_region_ids or set()
    newest = ConsensusRun.objects.filter(region=OuterRef("pk")).order_by("-created_at", "-id")
    regions = (
        Region.objects.filter(project=project)
        .annotate(
            submitted=Count(
                "submissions", filter=Q(submissions__status=SubmissionStatus.SUBMITTED)
            ),
            run_status=Subquery(newest.values("status")[:1]),
        )
        .values("pk", "origin", "extra_slots", "submitted", "run_status")
    )
    tally = dict.fromkeys(
        (
            "annotating",
            "waiting_merge",
            "needs_more",
            "needs_adjudication",
            "adjudicated",
            "accepted",
            "gold",
        ),
        0,
    )
    samples: dict[str, list[int]] = {}
    for row in regions.order_by("pk"):
        full = row["submitted"] >= project.redundancy_k + row["extra_slots"]
        status = row["run_status"]
        if row["origin"] == RegionOrigin.GOLD:
            key = "gold"
        elif row["pk"] in queue_region_ids:
            key = "needs_adjudication"
        elif row["pk"] in decided or status == ConsensusStatus.NEEDS_ADJUDICATION:
            key = "adjudicated"
        elif status == ConsensusStatus.ACCEPTED:
            key = "accepted"
        elif full:
            key = "waiting_merge"
        elif status == ConsensusStatus.NEEDS_MORE:
            key = "needs_more"
        else:
            key = "annotating"
        tally[key] += 1
        if len(samples.setdefault(key, [])) < STEP_SAMPLE:
            samples[key].append(row["pk"])
    return Pipeline(**tally, samples=samples)


# --- experts' workload ------------------------------------------------------------------------


def _adjudication_model() -> type[Model] | None:
    """The Adjudication model where the adjudication work has added it; None before."""
    try:
        return apps.get_model("annotation", "Adjudication")
    except LookupError:
        return None


def _user_field(model: type[Model]) -> str | None:
    """Name of the first foreign key to the user model (the deciding expert)."""
    for f in model._meta.get_fields():
        if (
            getattr(f, "many_to_one", False)
            and f.related_model is not None
            and (f.related_model._meta.label == settings.AUTH_USER_MODEL)
        ):
            return f.name
    return None


@dataclass(frozen=True)
class ExpertLoad:
    queue_length: int
    preview: list[ConsensusRun]
    decisions: int | None  # None: adjudication decisions are not recorded yet
    per_expert: list[tuple[str, int]] = field(default_factory=list)


def decided_regions(project: Project) -> set[int]:
    """Ids of the project's regions with an expert decision (none before adjudication exists)."""
    model = _adjudication_model()
    if model is None:
        return set()
    return set(model.objects.filter(region__project=project).values_list("region_id", flat=True))


def expert_load(project: Project, queue: list[ConsensusRun]) -> ExpertLoad:
    model = _adjudication_model()
    decisions: int | None = None
    per_expert: list[tuple[str, int]] = []
    if model is not None and any(f.name == "region" for f in model._meta.get_fields()):
        rows = model.objects.filter(region__project=project)
        decisions = rows.count()
        who = _user_field(model)
        if who:
            counted = rows.values(f"{who}__username").annotate(n=Count("pk")).order_by("-n")
            per_expert = [(r[f"{who}__username"] or "—", r["n"]) for r in counted]
    return ExpertLoad(len(queue), queue[:QUEUE_PREVIEW], decisions, per_expert)


# --- annotators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotatorFigures:
    """One annotator's throughput and reliability in a project."""

    user_id: int
    username: str
    excluded: bool
    submitted: int
    submitted_recent: int
    median_seconds: float | None
    gold_scored: int
    gold_mean_dice: float | None
    sensitivity: float | None
    specificity: float | None
    reliability_source: str | None  # "gold" (measured) preferred over "staple" (estimated)
    reliability_regions: int


def annotator_figures(project: Project, only_user: object | None = None) -> list[AnnotatorFigures]:
    """Every annotator of the project (or just ``only_user``), most submissions first."""
    members = Membership.objects.filter(project=project, role=Role.ANNOTATOR).select_related("user")
    if only_user is not None:
        members = members.filter(user=only_user)
    since = timezone.now() - dt.timedelta(days=RECENT_DAYS)
    submitted = Submission.objects.filter(
        region__project=project, status=SubmissionStatus.SUBMITTED
    )
    per_user: dict[int, list[tuple[float, Any, float | None]]] = {}
    for row in submitted.filter(annotator__in=[m.user_id for m in members]).values_list(
        "annotator_id", "time_spent_seconds", "submitted_at", "gold_dice"
    ):
        per_user.setdefault(row[0], []).append(row[1:])
    reliability: dict[int, AnnotatorReliability] = {}
    for rel in AnnotatorReliability.objects.filter(project=project).order_by("source"):
        # "gold" sorts before "staple": the measured figure wins where both exist.
        reliability.setdefault(rel.annotator_id, rel)
    figures = []
    for m in members:
        rows = per_user.get(m.user_id, [])
        times = [t for t, _, _ in rows if t and t > 0]
        golds = [g for _, _, g in rows if g is not None]
        rel = reliability.get(m.user_id)
        figures.append(
            AnnotatorFigures(
                user_id=m.user_id,
                username=m.user.get_username(),
                excluded=m.excluded,
                submitted=len(rows),
                submitted_recent=sum(1 for _, at, _ in rows if at and at >= since),
                median_seconds=statistics.median(times) if times else None,
                gold_scored=len(golds),
                gold_mean_dice=sum(golds) / len(golds) if golds else None,
                sensitivity=rel.sensitivity if rel else None,
                specificity=rel.specificity if rel else None,
                reliability_source=rel.source if rel else None,
                reliability_regions=rel.n_regions if rel else 0,
            )
        )
    return sorted(figures, key=lambda f: (-f.submitted, f.username))


@dataclass(frozen=True)
class GoldResult:
    submission_id: int
    region_id: int
    dice: float
    submitted_at: dt.datetime | None


def gold_results(project: Project, user: object) -> list[GoldResult]:
    """The user's scored gold submissions, oldest first (for their learning curve)."""
    rows = Submission.objects.filter(
        region__project=project,
        region__origin=RegionOrigin.GOLD,
        annotator=user,
        status=SubmissionStatus.SUBMITTED,
        gold_dice__isnull=False,
    ).order_by("submitted_at", "pk")
    return [GoldResult(s.pk, s.region_id, s.gold_dice, s.submitted_at) for s in rows]


# --- the dashboard, per role ------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    """What one member may see; a section is None when their role may not see it."""

    project: Project
    role: str
    histogram: Histogram | None
    pipeline: Pipeline | None
    expert: ExpertLoad | None
    annotators: list[AnnotatorFigures] | None  # managers: everyone
    own: AnnotatorFigures | None  # an annotator: their own figures
    gold: list[GoldResult] | None


def dashboard_for(user: object, project_id: int) -> Dashboard:
    """The dashboard of a project the user is a member of (404 otherwise), cut to their role.

    Annotators never see consensus figures (blind annotation): only their own work. Managers,
    experts and researchers see agreement and where the regions wait; experts and managers the
    adjudication queue; managers every annotator's throughput and reliability.
    """
    project = access_project(user, project_id)
    role = role_in(user, project) or ""
    if role == Role.ANNOTATOR:
        own = annotator_figures(project, only_user=user)
        return Dashboard(
            project=project,
            role=role,
            histogram=None,
            pipeline=None,
            expert=None,
            annotators=None,
            own=own[0] if own else None,
            gold=gold_results(project, user),
        )
    reads_consensus = role in CONSENSUS_READERS
    queue = adjudication_queue(project) if reads_consensus else []
    return Dashboard(
        project=project,
        role=role,
        histogram=agreement_histogram(project) if reads_consensus else None,
        pipeline=(
            region_pipeline(project, {r.region_id for r in queue}, decided_regions(project))
            if reads_consensus
            else None
        ),
        expert=expert_load(project, queue) if role in ADJUDICATORS else None,
        annotators=annotator_figures(project) if role == Role.MANAGER else None,
        own=None,
        gold=None,
    )


# --- teaching feedback ------------------------------------------------------------------------


@dataclass(frozen=True)
class Feedback:
    """A student's submission beside the answer it is judged against: the expert's outline on
    a gold region (``kind == "gold"``), or the region's final answer once it is closed
    (``kind == "final"``: an expert's decision, else the accepted consensus)."""

    submission: Submission
    reference: Submission | None
    own_shapes: list[dict[str, Any]]
    expert_shapes: list[dict[str, Any]]
    own_area: float
    expert_area: float
    overlap_area: float
    kind: str = "gold"

    @property
    def dice(self) -> float | None:
        """Gold: the score stored at submission. Final: 2|A∩B| / (|A| + |B|), 1.0 when both
        are empty (agreement's convention for raters who both mark nothing)."""
        if self.kind == "gold":
            return self.submission.gold_dice
        total = self.own_area + self.expert_area
        return 1.0 if total == 0 else 2 * self.overlap_area / total


def _reference(region: Region) -> Submission | None:
    """The expert's (or manager's) first submitted outline: the one gold Dice is scored on."""
    return (
        Submission.objects.filter(
            region=region,
            status=SubmissionStatus.SUBMITTED,
            annotator__memberships__project=region.project,
            annotator__memberships__role__in=[Role.EXPERT, Role.MANAGER],
        )
        .order_by("submitted_at", "pk")
        .first()
    )


def _shapes(submission: Submission) -> list[dict[str, Any]]:
    return [
        {
            "label_class": s.label_class_id,
            "name": s.label_class.name,
            "color": s.label_class.color,
            "geometry": s.geometry,
        }
        for s in submission.shapes.select_related("label_class")
    ]


def feedback_for(user: object, submission_id: int) -> Feedback:
    """The author's own submitted work beside the answer it is judged against; 404 otherwise.

    404 (never 403) for anyone but the author, before it is submitted, on a region that is
    neither gold nor closed with a final answer, and for the expert's own reference outline.
    """
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such feedback.")
    submission = (
        Submission.objects.filter(
            pk=submission_id,
            annotator=user,
            status=SubmissionStatus.SUBMITTED,
            region__project__memberships__user=user,
        )
        .select_related("region__project", "region__slide")
        .first()
    )
    if submission is None:
        raise Http404("No such feedback.")
    own = _shapes(submission)
    if submission.region.origin != RegionOrigin.GOLD:
        final = final_answer_shapes(submission.region)
        if final is None:
            raise Http404("No such feedback.")
        answer = _named(final, submission.region.project)
        own_area, answer_area, overlap = _areas(own, answer)
        return Feedback(submission, None, own, answer, own_area, answer_area, overlap, "final")
    reference = _reference(submission.region)
    if reference is not None and reference.pk == submission.pk:
        raise Http404("No such feedback.")
    expert = _shapes(reference) if reference is not None else []
    own_area, expert_area, overlap = _areas(own, expert)
    return Feedback(submission, reference, own, expert, own_area, expert_area, overlap)


def _named(shapes: list[dict[str, Any]], project: object) -> list[dict[str, Any]]:
    """Final-answer shapes with their class name and colour, as the page draws them."""
    classes = {c.pk: c for c in LabelClass.objects.filter(project=project)}
    named = []
    for s in shapes:
        label = classes.get(s["label_class"])
        named.append(
            {
                **s,
                "name": label.name if label else "?",
                "color": label.color if label else "#888888",
            }
        )
    return named


def _areas(own: list[dict[str, Any]], expert: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Level-0 pixel areas: the student's, the expert's, and their same-class overlap."""
    from shapely import unary_union
    from shapely.geometry import shape

    def by_class(shapes: list[dict[str, Any]]) -> dict[int, Any]:
        grouped: dict[int, list[Any]] = {}
        for s in shapes:
            grouped.setdefault(s["label_class"], []).append(shape(s["geometry"]))
        return {cls: unary_union(parts) for cls, parts in grouped.items()}

    a, b = by_class(own), by_class(expert)
    overlap = sum(a[c].intersection(b[c]).area for c in set(a) & set(b))
    return (sum(g.area for g in a.values()), sum(g.area for g in b.values()), overlap)
