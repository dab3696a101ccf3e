"""The export builder page: choose classes, labels, resolution, patches and split; watch the
builds; download the ready ones (managers and researchers; 404 for anyone else)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation.models import LabelClass
from learning.exports.config import ConfigError, ExportConfig
from learning.exports.selectors import access_project_for_exports, exports_of
from learning.exports.services import export_create


def _form_data(request: HttpRequest) -> dict[str, object]:
    post = request.POST
    data: dict[str, object] = {
        "class_ids": post.getlist("class_ids"),
        "labels": post.get("labels", "consensus"),
        "min_agreement": post.get("min_agreement") or 0.0,
        "mpp": post.get("mpp") or None,
        "patch_size": post.get("patch_size") or 256,
        "stride": post.get("stride") or None,
        "split_by": post.get("split_by", "slide"),
        "fractions": [post.get(f"fraction_{s}") or 0 for s in ("train", "val", "test")],
        "seed": post.get("seed") or 0,
        "image_format": post.get("image_format", "png"),
    }
    return data


@login_required
def export_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project_for_exports(request.user, project_id)
    if request.method == "POST":
        try:
            export_create(project=project, user=request.user, data=_form_data(request))
        except ConfigError as error:
            messages.error(request, f"Export not started: {error}")
        else:
            messages.success(request, "Export queued: it builds in the background.")
        return redirect("exports:page", project_id=project.pk)
    context = {
        "project": project,
        "classes": LabelClass.objects.filter(project=project, is_background=False).order_by(
            "order", "id"
        ),
        "defaults": ExportConfig(),
        "exports": exports_of(request.user, project_id)[:50],
    }
    return render(request, "learning/exports/exports.html", context)
