"""Learning pages: a project's rounds and training progress, a model version's metrics and
lineage, and the map images (prediction, uncertainty) drawn over slides and regions."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_POST

from annotation.selectors import access_assignment, access_project_as_manager
from learning import maps
from learning.models import RoundState
from learning.selectors_pages import (
    access_version_region,
    access_version_slide,
    class_colors,
    class_names,
    current_round,
    learning_overview,
    progress_payload,
    region_prediction,
    round_of,
    slide_layers,
    tile_maps,
    training_run_of,
    version_detail,
)

logger = logging.getLogger(__name__)

POLL_SECONDS = 3
# Map canvases: about one pixel per map cell, but at least MIN (cells drawn as crisp blocks,
# not blurred by the viewer's smoothing) unless the box is smaller, and at most MAX.
SLIDE_MAP_MIN_SIDE, SLIDE_MAP_MAX_SIDE = 1024, 2048
REGION_MAP_MIN_SIDE, REGION_MAP_MAX_SIDE = 512, 1024
MAP_CACHE_SECONDS = 300
KINDS = ("prediction", "uncertainty")

# Page action -> (service module, function): the round state machine's writes.
SERVICES = {
    "start": ("learning.services.rounds", "round_start"),
    "retry": ("learning.services.rounds", "round_retry"),
    "cancel": ("learning.services.training_runs", "training_run_cancel"),
}


def _service(action: str) -> tuple[Callable[..., Any], tuple[type[Exception], ...]] | None:
    """The service behind a page button and the errors it refuses with; None when absent."""
    module_name, name = SERVICES[action]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    function = getattr(module, name, None)
    if function is None:
        return None
    errors = tuple(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Exception) and v.__module__ == module_name
    )
    return function, (*errors, ValueError)


def _run_action(request: HttpRequest, action: str, done: str, **kwargs: Any) -> None:
    found = _service(action)
    if found is None:
        messages.error(request, "This action is not available yet.")
        return
    function, errors = found
    try:
        function(user=request.user, **kwargs)
    except errors as exc:
        messages.error(request, f"Not done: {exc}")
    else:
        messages.success(request, done)


# --- the project learning page ----------------------------------------------------------------


@login_required
def project_learning(request: HttpRequest, project_id: int) -> HttpResponse:
    """Managers, experts and researchers (404 otherwise): the round's steps and progress."""
    overview = learning_overview(request.user, project_id)
    context = {
        "overview": overview,
        "project": overview.project,
        "current": overview.current,
        "is_manager": overview.role == "manager",
        "actions": {a: _service(a) is not None for a in SERVICES},
        "poll_url": reverse("learning:progress", args=[project_id]),
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "learning/project.html", context)


@login_required
@require_GET
def progress(request: HttpRequest, project_id: int) -> JsonResponse:
    """The numbers the learning page polls (never cached)."""
    payload = progress_payload(request.user, project_id)
    if payload["round"] is not None:
        payload["round"]["curve"] = render_to_string(
            "learning/_curve.html",
            {
                "rows": payload["round"]["history"],
                "epochs": payload["round"]["figures"].get("epochs"),
            },
        )
    response = JsonResponse(payload)
    patch_cache_control(response, private=True, no_store=True)
    return response


@login_required
@require_POST
def start_round(request: HttpRequest, project_id: int) -> HttpResponse:
    """Managers: start training the collecting round now (before its quota is met)."""
    project = access_project_as_manager(request.user, project_id)
    current = current_round(project)
    if current is None or current.state != RoundState.COLLECTING:
        messages.error(request, "No round is collecting labels.")
    else:
        _run_action(request, "start", f"Round {current.number} started.", round=current)
    return redirect("learning:project", project_id=project.pk)


@login_required
@require_POST
def retry_round(request: HttpRequest, round_id: int) -> HttpResponse:
    """Managers: run a failed round's step again."""
    found = round_of(request.user, round_id)
    _run_action(request, "retry", f"Round {found.number} is retrying.", round=found)
    return redirect("learning:project", project_id=found.project_id)


@login_required
@require_POST
def cancel_run(request: HttpRequest, run_id: int) -> HttpResponse:
    """Managers: ask a queued or running training to stop at its next chunk."""
    run = training_run_of(request.user, run_id)
    _run_action(request, "cancel", "Training will stop after the current chunk.", run=run)
    return redirect("learning:project", project_id=run.project_id)


# --- the model version page -------------------------------------------------------------------


@login_required
def model_version(request: HttpRequest, version_id: int) -> HttpResponse:
    """Metrics, learning curve, hyper-parameters and lineage of one model version."""
    detail = version_detail(request.user, version_id)
    return render(
        request,
        "learning/model_version.html",
        {"detail": detail, "version": detail.version, "project": detail.version.project},
    )


# --- map images -------------------------------------------------------------------------------


def _png(rgba: Any) -> HttpResponse:
    response = HttpResponse(maps.png_bytes(rgba), content_type="image/png")
    patch_cache_control(response, private=True, max_age=MAP_CACHE_SECONDS)
    return response


def _side(box_side: int, tiles: list[maps.TileMap], floor: int, cap: int) -> int:
    return max(maps.natural_side(box_side, tiles, cap), min(floor, box_side))


def _colour(version: Any, kind: str, values: Any, covered: Any) -> Any:
    if kind == "prediction":
        return maps.prediction_rgba(values, covered, class_colors(version))
    return maps.uncertainty_rgba(values, covered)


@login_required
@require_GET
def slide_map(request: HttpRequest, version_id: int, slide_id: int, kind: str) -> HttpResponse:
    """The version's prediction or uncertainty over the whole slide, at thumbnail scale."""
    if kind not in KINDS:
        raise Http404("No such map.")
    version, slide = access_version_slide(request.user, version_id, slide_id)
    tiles = tile_maps(version, slide.pk, kind)
    side = _side(max(slide.width, slide.height), tiles, SLIDE_MAP_MIN_SIDE, SLIDE_MAP_MAX_SIDE)
    size, covers = maps.fit_canvas(0, 0, slide.width, slide.height, side)
    values, covered = maps.compose(tiles, covers, size)
    return _png(_colour(version, kind, values, covered))


@login_required
@require_GET
def region_map(request: HttpRequest, version_id: int, region_id: int, kind: str) -> HttpResponse:
    """The version's prediction or uncertainty over one region (the workspace overlay)."""
    if kind not in KINDS:
        raise Http404("No such map.")
    version, region = access_version_region(request.user, version_id, region_id)
    box = (region.x, region.y, region.x + region.width, region.y + region.height)
    tiles = tile_maps(version, region.slide_id, kind, box=box)
    side = _side(max(region.width, region.height), tiles, REGION_MAP_MIN_SIDE, REGION_MAP_MAX_SIDE)
    size, covers = maps.fit_canvas(region.x, region.y, region.width, region.height, side)
    values, covered = maps.compose(tiles, covers, size)
    return _png(_colour(version, kind, values, covered))


@login_required
@require_GET
def slide_layers_json(request: HttpRequest, slide_id: int) -> JsonResponse:
    """Map layers the viewer may offer on this slide (an empty list when none may be seen)."""
    layers = []
    for layer in slide_layers(request.user, slide_id):
        v = layer["version"]
        layers.append(
            {
                "version": v.pk,
                "number": v.number,
                "project": v.project.name,
                "tiles": layer["tiles"],
                "meanDice": (v.metrics or {}).get("mean_dice"),
                "page": reverse("learning:model", args=[v.pk]),
                "prediction": reverse("learning:slide-map", args=[v.pk, slide_id, "prediction"]),
                "uncertainty": reverse("learning:slide-map", args=[v.pk, slide_id, "uncertainty"]),
                "classes": [c for c in layer["classes"] if c["index"] > 0],
            }
        )
    response = JsonResponse({"layers": layers})
    patch_cache_control(response, private=True, no_store=True)
    return response


@login_required
@require_GET
def workspace_prediction(request: HttpRequest, assignment_id: int) -> JsonResponse:
    """The prediction overlay the workspace may offer its annotator: 404 when there is none
    they may see (students unless the project shows predictions to annotators)."""
    assignment = access_assignment(request.user, assignment_id)
    if assignment.annotator_id != request.user.pk:
        raise Http404("No such assignment.")
    version = region_prediction(request.user, assignment)
    if version is None:
        raise Http404("No prediction to show.")
    region = assignment.region
    response = JsonResponse(
        {
            "modelVersion": version.pk,
            "number": version.number,
            "url": reverse("learning:region-map", args=[version.pk, region.pk, "prediction"]),
            "classes": [c for c in class_names(version) if c["index"] > 0],
        }
    )
    patch_cache_control(response, private=True, no_store=True)
    return response
