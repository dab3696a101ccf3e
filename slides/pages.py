"""Server-rendered pages: the slide library and the deep-zoom viewer."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from slides.models import Slide
from slides.selectors import access_slide, slides_visible_to, user_manages_slide
from slides.services import slide_record_access


@login_required
def library(request: HttpRequest) -> HttpResponse:
    """Every slide of the user's projects, grouped by project, with thumbnail and status."""
    slides = slides_visible_to(request.user)
    # Projects are reached through the reverse relation by name (slides/ imports no other app).
    project_model = Slide._meta.get_field("projects").related_model
    projects = (
        project_model.objects.filter(memberships__user=request.user)
        .distinct()
        .order_by("name")
        .prefetch_related(Prefetch("slides", queryset=slides.order_by("name", "id")))
    )
    groups = []
    for project in projects:
        role = project.memberships.filter(user=request.user).values_list("role", flat=True).first()
        groups.append({"project": project, "role": role, "slides": list(project.slides.all())})
    return render(request, "slides/library.html", {"groups": groups})


@login_required
def viewer(request: HttpRequest, slide_id: int) -> HttpResponse:
    """OpenSeadragon over the slide's deep-zoom tiles, with navigator and scale bar."""
    slide = access_slide(request.user, slide_id)
    slide_record_access(user_id=request.user.pk, slide_id=slide.pk)
    # Projects holding this slide where the user may draw gold-standard regions (by role name:
    # slides/ imports no other app).
    gold_projects = list(
        slide.projects.filter(
            memberships__user=request.user, memberships__role__in=["expert", "manager"]
        )
        .values("pk", "name")
        .distinct()
    )
    context = {
        "slide": slide,
        "gold_projects": gold_projects,
        "is_manager": user_manages_slide(request.user, slide.pk),
        "viewer_config": {
            "dziUrl": f"/dz/{slide.pk}.dzi",
            "mpp": slide.mpp,
            "ready": slide.status == "ready",
            "slideId": slide.pk,
            "slideSize": [slide.width, slide.height],
        },
    }
    return render(request, "slides/viewer.html", context)
