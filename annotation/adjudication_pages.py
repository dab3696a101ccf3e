"""Expert pages: the adjudication queue of a project and the adjudication of one region."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from annotation.models import LabelClass
from annotation.selectors import access_project
from annotation.selectors_adjudication import (
    access_region_adjudication,
    adjudication_history,
    annotator_layers,
    latest_run,
)
from annotation.selectors_consensus import ADJUDICATORS, adjudication_queue


@login_required
def queue(request: HttpRequest, project_id: int) -> HttpResponse:
    """Regions waiting for an expert, most disagreement first (experts and managers)."""
    project = access_project(request.user, project_id, roles=ADJUDICATORS)
    rows = [
        {"run": run, "priority": (1.0 - run.dice) * run.contested_pixels}
        for run in adjudication_queue(project)
    ]
    recent = (
        project.regions.filter(adjudications__isnull=False)
        .distinct()
        .order_by("-adjudications__created_at")[:10]
    )
    context = {"project": project, "rows": rows, "recent": list(dict.fromkeys(recent))}
    return render(request, "annotation/adjudication_queue.html", context)


@login_required
def adjudicate(request: HttpRequest, region_id: int) -> HttpResponse:
    """One region: every annotator's outlines, the consensus, the agreement map, the decision."""
    region = access_region_adjudication(request.user, region_id)
    project, slide = region.project, region.slide
    run = latest_run(region)
    history = adjudication_history(region)
    classes = list(LabelClass.objects.filter(project=project).order_by("order", "id"))
    config = {
        "region": {
            "id": region.pk,
            "x": region.x,
            "y": region.y,
            "width": region.width,
            "height": region.height,
        },
        "slide": {"id": slide.pk, "width": slide.width, "height": slide.height},
        "dziUrl": reverse("slides:dzi", args=[slide.pk]),
        "classes": [
            {"id": c.pk, "name": c.name, "color": c.color, "is_background": c.is_background}
            for c in classes
        ],
        "run": None
        if run is None
        else {
            "id": run.pk,
            "status": run.status,
            "dice": run.dice,
            "polygons": run.polygons,
        },
        "annotators": annotator_layers(region, run),
        "current": None
        if not history
        else {
            "decision": history[0].decision,
            "shapes": history[0].shapes,
            "needsReview": history[0].needs_review,
        },
        "urls": {
            "decide": reverse("region-adjudication", args=[region.pk]),
            "agreementMap": reverse("region-agreement-map", args=[region.pk]) if run else None,
            "queue": reverse("adjudication-queue-page", args=[project.pk]),
        },
    }
    context = {
        "region": region,
        "project": project,
        "slide": slide,
        "run": run,
        "history": history,
        "classes": classes,
        "adjudicate_config": config,
    }
    return render(request, "annotation/adjudicate.html", context)
