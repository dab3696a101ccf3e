"""Reads for adjudication: the permission-checking region fetch and what the expert page shows."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from annotation.models import Adjudication, ConsensusRun, Region, Submission, SubmissionStatus
from annotation.selectors_consensus import ADJUDICATORS

# Distinct, colour-blind-friendly outline colours (Okabe-Ito, then Tol's bright).
ANNOTATOR_COLORS = [
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#4477AA", "#EE6677", "#228833",
]  # fmt: skip


def access_region_adjudication(user: object, region_id: int) -> Region:
    """The region if the user may adjudicate it (the project's experts and managers), else 404."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such region.")
    region = (
        Region.objects.filter(
            pk=region_id,
            project__memberships__user=user,
            project__memberships__role__in=ADJUDICATORS,
        )
        .select_related("project", "slide")
        .first()
    )
    if region is None:
        raise Http404("No such region.")
    return region


def latest_run(region: Region) -> ConsensusRun | None:
    return ConsensusRun.objects.filter(region=region).order_by("-created_at", "-id").first()


def adjudication_history(region: Region) -> list[Adjudication]:
    """Every decision on the region, newest (the current one) first."""
    return list(
        Adjudication.objects.filter(region=region)
        .select_related("expert")
        .order_by("-created_at", "-id")
    )


def annotator_layers(region: Region, run: ConsensusRun | None) -> list[dict[str, Any]]:
    """Each counted annotator's submitted outlines, as the expert page draws them.

    Names are hidden unless the project shows them (``show_annotator_names``): annotators are
    then "Annotator 1..n" in submission order, so the expert judges outlines, not people.
    ``key`` matches the run's ``rater_scores``.
    """
    submissions = (
        Submission.objects.filter(region=region, status=SubmissionStatus.SUBMITTED, counts=True)
        .select_related("annotator")
        .prefetch_related("shapes")
        .order_by("pk")
    )
    show_names = region.project.show_annotator_names
    scores = {s["submission"]: s for s in (run.rater_scores if run else [])}
    layers = []
    for n, submission in enumerate(submissions):
        score = scores.get(submission.pk, {})
        layers.append(
            {
                "key": submission.pk,
                "label": submission.annotator.username if show_names else f"Annotator {n + 1}",
                "color": ANNOTATOR_COLORS[n % len(ANNOTATOR_COLORS)],
                "outcome": submission.outcome,
                "dice": score.get("dice"),
                "sensitivity": score.get("sensitivity"),
                "specificity": score.get("specificity"),
                "shapes": [
                    {"label_class": s.label_class_id, "geometry": s.geometry}
                    for s in sorted(submission.shapes.all(), key=lambda s: s.pk)
                ],
            }
        )
    return layers
