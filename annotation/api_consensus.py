"""The consensus REST API: a region's consensus runs, the adjudication queue, reliability.

Routes (in config/urls.py): ``path("api/", include("annotation.api_consensus"))`` gives
``/api/regions/<pk>/consensus/``, ``/api/projects/<pk>/adjudication-queue/`` and
``/api/projects/<pk>/reliability/``.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import AnnotatorReliability, ConsensusRun
from annotation.pseudonyms import PersonNamer, name_person
from annotation.selectors import access_project
from annotation.selectors_consensus import (
    ADJUDICATORS,
    access_region_consensus,
    adjudication_queue,
    reliability_visible_to,
)


class ConsensusRunSerializer(serializers.ModelSerializer):
    """A stored merge: figures, per-rater scores and the consensus outline (arrays stay on disk)."""

    class Meta:
        model = ConsensusRun
        fields = [
            "id",
            "region",
            "inputs_hash",
            "inputs",
            "method",
            "params",
            "class_ids",
            "height",
            "width",
            "downsample",
            "polygons",
            "class_dice",
            "dice",
            "fleiss_kappa",
            "rater_scores",
            "contested_fraction",
            "contested_pixels",
            "status",
            "region_label",
            "region_label_posterior",
            "iterations",
            "converged",
            "created_at",
        ]
        read_only_fields = fields


class ConsensusRunSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsensusRun
        fields = ["id", "status", "method", "dice", "contested_fraction", "created_at"]
        read_only_fields = fields


class RegionConsensusSerializer(serializers.Serializer):
    current = ConsensusRunSerializer(allow_null=True)
    runs = ConsensusRunSummarySerializer(many=True)


class QueueEntrySerializer(serializers.ModelSerializer):
    priority = serializers.SerializerMethodField()
    slide = serializers.IntegerField(source="region.slide_id")

    class Meta:
        model = ConsensusRun
        fields = [
            "id",
            "region",
            "slide",
            "dice",
            "contested_fraction",
            "contested_pixels",
            "priority",
            "created_at",
        ]
        read_only_fields = fields

    def get_priority(self, run: ConsensusRun) -> float:
        return round((1.0 - run.dice) * run.contested_pixels, 6)


class ReliabilitySerializer(serializers.ModelSerializer):
    """``username`` is the export's pseudonym for readers who may not see names."""

    username = serializers.CharField(source="annotator.username")

    def to_representation(self, row: AnnotatorReliability) -> dict:
        data = super().to_representation(row)
        name_person(data, "username", row.annotator_id, self.context)
        return data

    class Meta:
        model = AnnotatorReliability
        fields = [
            "annotator",
            "username",
            "source",
            "sensitivity",
            "specificity",
            "confusion",
            "n_regions",
            "updated_at",
        ]
        read_only_fields = fields


class RegionConsensusView(APIView):
    """A region's current consensus and its earlier runs (managers, experts, researchers)."""

    @extend_schema(responses=RegionConsensusSerializer)
    def get(self, request: Request, pk: int) -> Response:
        region = access_region_consensus(request.user, pk)
        runs = list(ConsensusRun.objects.filter(region=region).order_by("-created_at", "-id"))
        return Response(
            RegionConsensusSerializer({"current": runs[0] if runs else None, "runs": runs}).data
        )


class AdjudicationQueueView(APIView):
    """Regions waiting for an expert, ranked by (1 - dice) x contested pixels."""

    @extend_schema(responses=QueueEntrySerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = access_project(request.user, pk, roles=ADJUDICATORS)
        return Response(QueueEntrySerializer(adjudication_queue(project), many=True).data)


class ReliabilityView(APIView):
    """Annotators' reliability: managers and experts see all, anyone else only their own."""

    @extend_schema(responses=ReliabilitySerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        rows = reliability_visible_to(request.user, pk).order_by("annotator_id", "source")
        namer = PersonNamer(request.user, access_project(request.user, pk))
        return Response(ReliabilitySerializer(rows, many=True, context={"namer": namer}).data)


urlpatterns = [
    path("regions/<int:pk>/consensus/", RegionConsensusView.as_view(), name="region-consensus"),
    path(
        "projects/<int:pk>/adjudication-queue/",
        AdjudicationQueueView.as_view(),
        name="project-adjudication-queue",
    ),
    path("projects/<int:pk>/reliability/", ReliabilityView.as_view(), name="project-reliability"),
]
