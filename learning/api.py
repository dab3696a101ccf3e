"""The learning REST API: rounds (progress, start, retry), training runs (cancel) and model
versions (metrics, lineage, proposals).

Routes (in config/urls.py): ``path("api/", include("learning.api"))``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.filters import MAX_ID
from learning.models import ModelVersion, Proposal, Round, RoundTrigger, TrainingRun
from learning.selectors import (
    LEARNING_MANAGERS,
    access_learning_project,
    access_model_version,
    access_round,
    access_training_run,
    model_versions_visible_to,
    proposals_of,
    rounds_of,
)
from learning.services.rounds import (
    RoundError,
    round_current,
    round_quota,
    round_retry,
    round_start,
)
from learning.services.training_runs import training_run_cancel


class TrainingRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id", "round", "status", "base_version", "dataset_hash", "epoch", "epochs",
            "chunks", "history", "cancel_requested", "failed_reason", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class RoundSerializer(serializers.ModelSerializer):
    """A round with its step's progress; ``quota`` only for the collecting round."""

    quota = serializers.SerializerMethodField()
    runs = TrainingRunSerializer(many=True, read_only=True)
    # Declared so the schema's enum includes "" (a round not started by a trigger): DRF drops
    # allow_blank from read-only model fields.
    trigger = serializers.ChoiceField(
        choices=RoundTrigger.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Round
        fields = [
            "id", "project", "number", "state", "trigger", "model_version", "step_attempts",
            "failed_reason", "progress", "stage_seconds", "created_at", "advanced_at",
            "finished_at", "quota", "runs",
        ]  # fmt: skip
        read_only_fields = fields

    def get_quota(self, obj: Round) -> dict[str, int] | None:
        if obj.state != "collecting":
            return None
        quota = round_quota(round=obj)
        return {"accepted": quota.accepted, "needed": quota.needed, "regions": quota.regions}


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id", "project", "number", "training_run", "parent", "weights_path",
            "weights_sha256", "hyperparameters", "dataset_hash", "consensus_runs",
            "adjudications", "train_regions", "val_regions", "class_ids", "target_mpp",
            "patch_size", "metrics", "learning_curve", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ProposalSerializer(serializers.ModelSerializer):
    slide = serializers.IntegerField(source="region.slide_id", read_only=True)
    box = serializers.SerializerMethodField()

    class Meta:
        model = Proposal
        fields = [
            "id",
            "round",
            "model_version",
            "region",
            "slide",
            "box",
            "strategy",
            "score",
            "rank",
        ]
        read_only_fields = fields

    def get_box(self, obj: Proposal) -> list[int]:
        return list(obj.region.bounds)


def _refused(exc: RoundError) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


class ProjectRoundsView(APIView):
    @extend_schema(
        responses=RoundSerializer(many=True), summary="The project's rounds, newest first"
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = access_learning_project(request.user, project_id)
        round_current(project=project)  # a project always has an open round to show
        rounds = rounds_of(project).prefetch_related("runs")
        return Response(RoundSerializer(rounds, many=True).data)


class RoundStartView(APIView):
    @extend_schema(
        request=None,
        responses={200: RoundSerializer, 409: None},
        summary="Start training now (managers)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = access_learning_project(request.user, project_id, roles=LEARNING_MANAGERS)
        try:
            started = round_start(round=round_current(project=project), user=request.user)
        except RoundError as exc:
            return _refused(exc)
        return Response(RoundSerializer(started).data)


class RoundRetryView(APIView):
    @extend_schema(
        request=None,
        responses={200: RoundSerializer, 409: None},
        summary="Retry a failed step (managers)",
    )
    def post(self, request: Request, round_id: int) -> Response:
        found = access_round(request.user, round_id, roles=LEARNING_MANAGERS)
        try:
            retried = round_retry(round=found, user=request.user)
        except RoundError as exc:
            return _refused(exc)
        return Response(RoundSerializer(retried).data)


class TrainingRunCancelView(APIView):
    @extend_schema(
        request=None,
        responses={200: TrainingRunSerializer, 409: None},
        summary="Cancel a training run (managers)",
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = access_training_run(request.user, run_id, roles=LEARNING_MANAGERS)
        try:
            cancelled = training_run_cancel(run=run, user=request.user)
        except RoundError as exc:
            return _refused(exc)
        return Response(TrainingRunSerializer(cancelled).data)


class ModelVersionListView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("project", int, required=False)],
        responses=ModelVersionSerializer(many=True),
        summary="Model versions of the caller's projects",
    )
    def get(self, request: Request) -> Response:
        versions = model_versions_visible_to(request.user).order_by("project_id", "-number")
        project = request.query_params.get("project")
        if project is not None:
            if not project.isdigit() or int(project) > MAX_ID:  # past 64 bits: SQLite 500
                return Response({"project": "must be a project id"}, status=400)
            versions = versions.filter(project_id=int(project))
        return Response(ModelVersionSerializer(versions, many=True).data)


class ModelVersionDetailView(APIView):
    @extend_schema(responses=ModelVersionSerializer, summary="A model version: metrics and lineage")
    def get(self, request: Request, version_id: int) -> Response:
        version = access_model_version(request.user, version_id)
        return Response(ModelVersionSerializer(version).data)


class ModelVersionProposalsView(APIView):
    @extend_schema(responses=ProposalSerializer(many=True), summary="Regions a version proposed")
    def get(self, request: Request, version_id: int) -> Response:
        version = access_model_version(request.user, version_id)
        return Response(ProposalSerializer(proposals_of(version), many=True).data)


_V = "model-versions/<int:version_id>/"

urlpatterns = [
    path("projects/<int:project_id>/rounds/", ProjectRoundsView.as_view(), name="project-rounds"),
    path("projects/<int:project_id>/rounds/start/", RoundStartView.as_view(), name="round-start"),
    path("rounds/<int:round_id>/retry/", RoundRetryView.as_view(), name="round-retry"),
    path(
        "training-runs/<int:run_id>/cancel/",
        TrainingRunCancelView.as_view(),
        name="training-run-cancel",
    ),
    path("model-versions/", ModelVersionListView.as_view(), name="model-version-list"),
    path(_V, ModelVersionDetailView.as_view(), name="model-version-detail"),
    path(f"{_V}proposals/", ModelVersionProposalsView.as_view(), name="model-version-proposals"),
]
