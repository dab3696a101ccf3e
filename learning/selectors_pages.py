"""Reads for the learning pages (rounds, model versions, map layers), with their permission
filters: outsiders, and members whose role may not read a page, get 404."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db.models import Count, F, Q
from django.http import Http404

from annotation.models import LabelClass, Project, Region, Role
from annotation.selectors import access_project, access_region, role_in
from learning.maps import TileMap
from learning.models import (
    CandidateScore,
    CandidateTile,
    ModelVersion,
    Proposal,
    Round,
    RoundState,
    RoutingRecord,
    TrainingRun,
)

LEARNING_READERS = (Role.MANAGER, Role.EXPERT, Role.RESEARCHER)
STEPS = [
    (RoundState.COLLECTING, "Collecting labels"),
    (RoundState.TRAINING, "Training"),
    (RoundState.SCORING, "Scoring"),
    (RoundState.PROPOSING, "Proposing"),
    ("next", "Next round"),
]
HISTORY_LABELS = {
    "collecting": "Collecting",
    "training": "Training",
    "scoring": "Scoring",
    "proposing": "Proposing",
}
_ORDER = {key: i for i, (key, _) in enumerate(STEPS)}
_ORDER[RoundState.DONE] = len(STEPS) - 1


# --- permissions ------------------------------------------------------------------------------


def may_see_predictions(role: str | None, project: Project) -> bool:
    """Managers, experts and researchers always; annotators when the project shows them."""
    if role in LEARNING_READERS:
        return True
    return role == Role.ANNOTATOR and project.show_prediction_to_annotators


def access_learning_project(user: object, project_id: int) -> tuple[Project, str]:
    """The project and the user's role, for managers, experts and researchers; else 404."""
    project = access_project(user, project_id, roles=LEARNING_READERS)
    return project, role_in(user, project) or ""


def access_model_version(user: object, version_id: int, maps: bool = False) -> ModelVersion:
    """A version of a project the user reads learning in (``maps``: or may see predictions)."""
    version = ModelVersion.objects.select_related("project", "training_run").filter(pk=version_id)
    version = version.first()
    if version is None or not getattr(user, "is_authenticated", False):
        raise Http404("No such model version.")
    role = role_in(user, version.project)
    allowed = may_see_predictions(role, version.project) if maps else role in LEARNING_READERS
    if not allowed:
        raise Http404("No such model version.")
    return version


# --- the project learning page ----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    status: str  # done | current | failed | pending


@dataclass
class RoundView:
    """The round the page shows, with the running step's figures."""

    round: Round
    steps: list[Step]
    run: TrainingRun | None
    figures: dict[str, Any]  # what the running step reports (see ``_figures``)
    percent: float | None  # of the running step, when it can be measured
    history: list[dict[str, Any]] = field(default_factory=list)  # the run's epochs so far


def round_steps(current: Round) -> list[Step]:
    """The step bar: steps before the round's state done, its state current (or failed)."""
    at = _ORDER[current.state]
    steps = []
    for key, label in STEPS:
        i = _ORDER[key]
        if current.state == RoundState.DONE or i < at:
            status = "done"
        elif i == at:
            status = "failed" if current.failed else "current"
        else:
            status = "pending"
        steps.append(Step(str(key), label, status))
    return steps


def collecting_figures(current: Round) -> dict[str, Any]:
    """Accepted regions of the round against its quota, counted as the round machine counts
    them (``round.progress`` wins where the step reports them)."""
    from learning.services.rounds import round_quota  # the one definition of the quota

    quota = round_quota(round=current)
    progress = current.progress or {}
    return {
        "accepted": progress.get("accepted", quota.accepted),
        "quota": progress.get("quota", quota.needed),
        "regions": progress.get("regions", quota.regions),
    }


def _latest(rows: list[dict[str, Any]], key: str) -> Any:
    for row in reversed(rows):
        if row.get(key) is not None:
            return row[key]
    return None


def training_figures(current: Round, run: TrainingRun | None) -> dict[str, Any]:
    """Epoch x/y, loss, validation Dice and images/s: the round's progress, else the run's."""
    progress = dict(current.progress or {})
    history = list(run.history) if run is not None else []
    figures = {
        "epoch": progress.get("epoch", run.epoch if run else None),
        "epochs": progress.get("epochs", run.epochs if run else None),
    }
    for key in ("loss", "val_dice", "images_per_s"):
        figures[key] = progress.get(key, _latest(history, key))
    if run is not None:
        figures["run_status"] = run.status
        figures["run_status_label"] = run.get_status_display()
        figures["cancel_requested"] = run.cancel_requested
    return figures


def _percent(current: Round, figures: dict[str, Any]) -> float | None:
    pairs = {
        RoundState.COLLECTING: ("accepted", "quota"),
        RoundState.TRAINING: ("epoch", "epochs"),
        RoundState.SCORING: ("scored", "total"),
    }
    pair = pairs.get(current.state)
    if pair is None:
        return None
    done, total = figures.get(pair[0]), figures.get(pair[1])
    if done is None or not total:
        return None
    return round(min(100.0, 100.0 * done / total), 1)


def round_view(current: Round) -> RoundView:
    run = current.runs.order_by("-created_at", "-id").first()
    if current.state == RoundState.COLLECTING:
        figures = collecting_figures(current)
    elif current.state == RoundState.TRAINING:
        figures = training_figures(current, run)
    elif current.state == RoundState.SCORING:
        figures = {k: current.progress.get(k) for k in ("scored", "total")}
    else:
        figures = dict(current.progress or {})
    return RoundView(
        round=current,
        steps=round_steps(current),
        run=run,
        figures=figures,
        percent=_percent(current, figures),
        history=list(run.history) if run is not None else [],
    )


def current_round(project: Project) -> Round | None:
    """The open round; when every round is done, the last one."""
    rounds = Round.objects.filter(project=project).select_related("project", "model_version")
    return rounds.exclude(state=RoundState.DONE).first() or rounds.order_by("-number").first()


@dataclass(frozen=True)
class LearningOverview:
    project: Project
    role: str
    current: RoundView | None
    rounds: list[dict[str, Any]]
    versions: list[ModelVersion]


def learning_overview(user: object, project_id: int) -> LearningOverview:
    project, role = access_learning_project(user, project_id)
    current = current_round(project)
    rounds = []
    for r in (
        Round.objects.filter(project=project).select_related("model_version").order_by("-number")
    ):
        seconds = {str(k): v for k, v in (r.stage_seconds or {}).items()}
        rounds.append(
            {
                "round": r,
                "stages": [
                    (HISTORY_LABELS[str(key)], seconds.get(str(key))) for key, _ in STEPS[:4]
                ],
                "total": sum(v for v in seconds.values() if isinstance(v, int | float)) or None,
                "proposals": r.proposals.count(),
            }
        )
    versions = list(
        ModelVersion.objects.filter(project=project)
        .select_related("training_run")
        .annotate(n_proposals=Count("proposals"))
        .order_by("-number")
    )
    return LearningOverview(
        project=project,
        role=role,
        current=round_view(current) if current is not None else None,
        rounds=rounds,
        versions=versions,
    )


def progress_payload(user: object, project_id: int) -> dict[str, Any]:
    """What the page polls: the current round's state, step bar and running figures."""
    project, _ = access_learning_project(user, project_id)
    current = current_round(project)
    versions = ModelVersion.objects.filter(project=project).count()
    if current is None:
        return {"round": None, "versions": versions}
    view = round_view(current)
    return {
        "round": {
            "id": current.pk,
            "number": current.number,
            "state": current.state,
            "state_label": current.get_state_display(),
            "failed_reason": current.failed_reason,
            "step_attempts": current.step_attempts,
            "steps": [{"key": s.key, "status": s.status} for s in view.steps],
            "figures": view.figures,
            "percent": view.percent,
            "history": [
                {k: row.get(k) for k in ("epoch", "loss", "val_dice")} for row in view.history
            ],
            "run": view.run.pk if view.run is not None else None,
        },
        "versions": versions,
    }


# --- the model version page -------------------------------------------------------------------


@dataclass(frozen=True)
class VersionDetail:
    version: ModelVersion
    role: str
    dice: list[dict[str, Any]]  # per output index: {index, name, color, dice}
    proposals: list[Proposal]
    routing: list[RoutingRecord]
    slides: list[dict[str, Any]]  # slides with scored tiles: {slide, tiles}


def class_names(version: ModelVersion) -> list[dict[str, Any]]:
    """Output index -> the LabelClass it stands for (index 0, or None: background)."""
    classes = {c.pk: c for c in LabelClass.objects.filter(project=version.project_id)}
    named = []
    for index, class_id in enumerate(version.class_ids or []):
        label = classes.get(class_id) if class_id is not None else None
        named.append(
            {
                "index": index,
                "name": label.name if label else ("background" if index == 0 else "?"),
                "color": label.color if label else None,
            }
        )
    return named


def version_detail(user: object, version_id: int) -> VersionDetail:
    version = access_model_version(user, version_id)
    role = role_in(user, version.project) or ""
    dice_values = list((version.metrics or {}).get("dice") or [])
    names = class_names(version)
    while len(names) < len(dice_values):
        names.append({"index": len(names), "name": "?", "color": None})
    dice = [
        {**n, "dice": dice_values[i] if i < len(dice_values) else None} for i, n in enumerate(names)
    ]
    slides = (
        CandidateScore.objects.filter(model_version=version)
        .values("tile__slide_id", "tile__slide__name")
        .annotate(tiles=Count("pk"))
        .order_by("tile__slide__name")
    )
    return VersionDetail(
        version=version,
        role=role,
        dice=dice,
        proposals=list(
            Proposal.objects.filter(model_version=version)
            .select_related("region", "round", "tile")
            .order_by("round__number", "rank")
        ),
        routing=list(
            RoutingRecord.objects.filter(model_version=version)
            .select_related("region", "round")
            .order_by("round__number", "-score")
        ),
        slides=[
            {"id": s["tile__slide_id"], "name": s["tile__slide__name"], "tiles": s["tiles"]}
            for s in slides
        ],
    )


# --- map layers -------------------------------------------------------------------------------


def tile_maps(
    version: ModelVersion, slide_id: int, kind: str, box: tuple[int, int, int, int] | None = None
) -> list[TileMap]:
    """The version's ``kind`` maps ("prediction" or "uncertainty") of the slide's scored tiles,
    those overlapping the level-0 ``box`` when given."""
    field_name = "prediction_map" if kind == "prediction" else "uncertainty_map"
    scores = CandidateScore.objects.filter(model_version=version, tile__slide_id=slide_id)
    if box is not None:
        x0, y0, x1, y1 = box
        scores = scores.filter(tile__x__lt=x1, tile__y__lt=y1)
    rows = scores.values_list(
        "tile__x", "tile__y", "tile__width", "tile__height", "map_size", field_name
    ).order_by("tile__y", "tile__x", "pk")
    maps = []
    for x, y, w, h, size, data in rows:
        if box is not None and (x + w <= box[0] or y + h <= box[1]):
            continue
        values = np.frombuffer(bytes(data), dtype=np.uint8)
        if size <= 0 or values.size != size * size:
            continue  # a malformed row draws nothing rather than failing the image
        maps.append(TileMap(x, y, w, h, values.reshape(size, size)))
    return maps


def class_colors(version: ModelVersion) -> list[tuple[int, int, int] | None]:
    """Colour of each output index (None for background and classes without one)."""
    from learning.maps import hex_rgb

    colors: list[tuple[int, int, int] | None] = []
    for index, named in enumerate(class_names(version)):
        if index == 0 or not named["color"]:
            colors.append(None)
            continue
        try:
            colors.append(hex_rgb(named["color"]))
        except ValueError:
            colors.append(None)
    return colors


def access_version_slide(user: object, version_id: int, slide_id: int) -> tuple[ModelVersion, Any]:
    """A version the user may see maps of, and one of its project's slides; else 404."""
    version = access_model_version(user, version_id, maps=True)
    slide = version.project.slides.filter(pk=slide_id).first()
    if slide is None or not slide.width or not slide.height:
        raise Http404("No such slide.")
    return version, slide


def access_version_region(
    user: object, version_id: int, region_id: int
) -> tuple[ModelVersion, Region]:
    """A region the user may see, under a version of its project they may see maps of."""
    region = access_region(user, region_id)
    version = access_model_version(user, version_id, maps=True)
    if version.project_id != region.project_id:
        raise Http404("No such region.")
    return version, region


def slide_layers(user: object, slide_id: int) -> list[dict[str, Any]]:
    """Model versions with scores on the slide, in projects holding it where the user may see
    predictions; newest first. Outsiders to the slide get 404."""
    from slides.selectors import access_slide

    slide = access_slide(user, slide_id)
    projects = [
        p
        for p in slide.projects.filter(memberships__user=user).distinct()
        if may_see_predictions(role_in(user, p), p)
    ]
    versions = (
        ModelVersion.objects.filter(project__in=projects, scores__tile__slide=slide)
        .annotate(tiles=Count("scores", filter=Q(scores__tile__slide=slide)))
        .select_related("project")
        .order_by("project__name", "-number")
    )
    return [
        {"version": v, "slide": slide, "tiles": v.tiles, "classes": class_names(v)}
        for v in versions
    ]


def region_prediction(user: object, assignment: Any) -> ModelVersion | None:
    """The newest version of the assignment's project that scored a tile overlapping its
    region, when its annotator may see predictions (experts and managers always; students
    where the project shows them)."""
    region = assignment.region
    project = region.project
    if not may_see_predictions(role_in(user, project), project):
        return None
    overlapping = (
        CandidateTile.objects.filter(
            project=project,
            slide_id=region.slide_id,
            x__lt=region.x + region.width,
            y__lt=region.y + region.height,
        )
        .annotate(x_end=F("x") + F("width"), y_end=F("y") + F("height"))
        .filter(x_end__gt=region.x, y_end__gt=region.y)
    )
    return (
        ModelVersion.objects.filter(project=project, scores__tile__in=overlapping)
        .order_by("-number")
        .first()
    )


def training_run_of(user: object, run_id: int) -> TrainingRun:
    """A training run of a project the user manages; else 404."""
    run = TrainingRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None or role_in(user, run.project) != Role.MANAGER:
        raise Http404("No such training run.")
    return run


def round_of(user: object, round_id: int) -> Round:
    """A round of a project the user manages; else 404."""
    found = Round.objects.select_related("project").filter(pk=round_id).first()
    if found is None or role_in(user, found.project) != Role.MANAGER:
        raise Http404("No such round.")
    return found
