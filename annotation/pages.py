"""Server-rendered annotator pages: the region workspace and "my work"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotation.models import LabelClass, Role
from annotation.selectors import access_assignment, access_project
from annotation.selectors_work import (
    annotator_closed,
    annotator_queue,
    annotator_recent,
    annotator_submitted_count,
)
from annotation.services.assignments import AssignmentError, assignment_next

# What the workspace records as shown to the annotator (no model overlay in this view).
_SHOWN = {"prediction_overlay": False}


@login_required
def workspace(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """One region to annotate: OpenSeadragon with the polygon editor; the annotator's own only."""
    assignment = access_assignment(request.user, assignment_id)
    # Managers can read any assignment through the API, but the workspace writes as its author.
    if assignment.annotator_id != request.user.pk:
        raise Http404("No such assignment.")
    region, project = assignment.region, assignment.region.project
    slide = region.slide
    classes = list(LabelClass.objects.filter(project=project).order_by("order", "id"))
    config = {
        "assignment": {
            "id": assignment.pk,
            "status": assignment.status,
            "expiresAt": assignment.expires_at.isoformat(),
        },
        "region": {
            "id": region.pk,
            "x": region.x,
            "y": region.y,
            "width": region.width,
            "height": region.height,
        },
        "slide": {
            "id": slide.pk,
            "name": slide.name,
            "mpp": slide.mpp,
            "width": slide.width,
            "height": slide.height,
        },
        "dziUrl": reverse("slides:dzi", args=[slide.pk]),
        "project": {
            "id": project.pk,
            "name": project.name,
            "regionLabels": project.region_labels,
            "polygonAnnotations": project.polygon_annotations,
        },
        "classes": [
            {
                "id": c.pk,
                "name": c.name,
                "color": c.color,
                "order": c.order,
                "is_background": c.is_background,
                "shortcut": c.shortcut,
            }
            for c in classes
        ],
        "urls": {
            "work": f"/api/assignments/{assignment.pk}/work/",
            "submit": f"/api/assignments/{assignment.pk}/submit/",
            "next": reverse("annotation:next_region", args=[project.pk]),
            "myWork": reverse("annotation:my_work", args=[project.pk]),
        },
        "shown": _SHOWN,
    }
    context = {
        "assignment": assignment,
        "region": region,
        "project": project,
        "slide": slide,
        "classes": classes,
        "guideline_images": list(project.guideline_images.all()),
        "workspace_config": config,
    }
    return render(request, "annotation/workspace.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def next_region(request: HttpRequest, project_id: int) -> HttpResponse:
    """Hand the annotator their current or next region and open it; else back to "my work"."""
    project = access_project(request.user, project_id, roles=[Role.ANNOTATOR])
    try:
        assignment = assignment_next(project=project, user=request.user)
    except AssignmentError as exc:
        messages.warning(request, f"No region for you right now: {exc}.")
        return redirect("annotation:my_work", project_id=project.pk)
    if assignment is None:
        return redirect(f"{reverse('annotation:my_work', args=[project.pk])}?nothing_left=1")
    return redirect("annotation:workspace", assignment_id=assignment.pk)


@login_required
def my_work(request: HttpRequest, project_id: int) -> HttpResponse:
    """The annotator's queue in one project: active regions, what they submitted, next region."""
    project = access_project(request.user, project_id, roles=[Role.ANNOTATOR])
    context = {
        "project": project,
        "queue": annotator_queue(request.user, project),
        "submitted_count": annotator_submitted_count(request.user, project),
        "recent": annotator_recent(request.user, project),
        "closed": annotator_closed(request.user, project),
        "nothing_left": request.GET.get("nothing_left") == "1",
    }
    return render(request, "annotation/my_work.html", context)
