"""The adjudication REST API: a region's expert decision (read, decide) and its agreement map.

Routes (in annotation/adjudication_urls.py): ``/api/regions/<pk>/adjudication/`` (GET the
current decision and the history, POST a decision) and ``/api/regions/<pk>/agreement-map.png``.
Experts and managers of the region's project only; anyone else gets 404.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.agreement_map import agreement_png
from annotation.models import Adjudication, AdjudicationDecision
from annotation.selectors_adjudication import (
    access_region_adjudication,
    adjudication_history,
    latest_run,
)
from annotation.services.adjudication import AdjudicationError, adjudication_decide


class AdjudicationSerializer(serializers.ModelSerializer):
    """One stored decision: who, what, why, on which consensus run, and the re-scores."""

    expert_username = serializers.CharField(source="expert.username", default=None)
    needs_review = serializers.BooleanField(read_only=True)

    class Meta:
        model = Adjudication
        fields = [
            "id",
            "region",
            "expert",
            "expert_username",
            "decision",
            "reason",
            "shapes",
            "based_on",
            "inputs_hash",
            "rater_scores",
            "stale_run",
            "needs_review",
            "created_at",
        ]
        read_only_fields = fields


class RegionAdjudicationSerializer(serializers.Serializer):
    current = AdjudicationSerializer(allow_null=True)
    history = AdjudicationSerializer(many=True)


class ShapeSerializer(serializers.Serializer):
    label_class = serializers.IntegerField()
    geometry = serializers.JSONField()


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=AdjudicationDecision.choices)
    reason = serializers.CharField(max_length=2000)
    shapes = ShapeSerializer(many=True, required=False, default=list)


class RegionAdjudicationView(APIView):
    """A region's expert decision: GET the current one and the history, POST a new one."""

    @extend_schema(responses=RegionAdjudicationSerializer)
    def get(self, request: Request, pk: int) -> Response:
        region = access_region_adjudication(request.user, pk)
        history = adjudication_history(region)
        current = history[0] if history else None
        return Response(RegionAdjudicationSerializer({"current": current, "history": history}).data)

    @extend_schema(request=DecisionSerializer, responses={201: AdjudicationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        region = access_region_adjudication(request.user, pk)
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            decision = adjudication_decide(
                region=region,
                expert=request.user,
                decision=body.validated_data["decision"],
                shapes=[dict(s) for s in body.validated_data["shapes"]],
                reason=body.validated_data["reason"],
            )
        except AdjudicationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(AdjudicationSerializer(decision).data, status=status.HTTP_201_CREATED)


class PNGRenderer(BaseRenderer):
    """Lets ``Accept: image/png`` through negotiation; errors are still JSON bytes."""

    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class AgreementMapView(APIView):
    """The current run's per-pixel agreement as an RGBA PNG on the region's merge grid."""

    renderer_classes = [JSONRenderer, PNGRenderer]

    @extend_schema(responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request: Request, pk: int) -> HttpResponse:
        from annotation.services.merge import load_arrays

        region = access_region_adjudication(request.user, pk)
        run = latest_run(region)
        if run is None:
            raise Http404("This region has no consensus yet.")
        png = agreement_png(load_arrays(run)["vote_share"])
        response = HttpResponse(png, content_type="image/png")
        # A run never changes: its digest names the image. Private: members only.
        response["ETag"] = f'"{run.arrays_digest[:32]}"'
        response["Cache-Control"] = "private, max-age=3600"
        return response
