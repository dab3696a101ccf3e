"""The research REST API: exports (request, list, read, download, lineage) and the figures
researchers read (agreement and reliability, model versions and their metrics).

Exports: managers and researchers of the project; everyone else gets 404, as for a project
that does not exist. Figures: managers, experts and researchers.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from learning.exports.config import ConfigError
from learning.exports.selectors import (
    access_export,
    access_project_for_exports,
    export_lineage,
    exports_of,
    research_agreement,
    research_model_versions,
)
from learning.exports.services import export_create
from learning.models import ExportStatus, TrainingExport


class TrainingExportSerializer(serializers.ModelSerializer):
    """An export: its choices, build status and progress, hash, counts and lineage ids."""

    download = serializers.SerializerMethodField()

    class Meta:
        model = TrainingExport
        fields = [
            "id",
            "project",
            "config",
            "status",
            "progress",
            "progress_text",
            "failed_reason",
            "export_hash",
            "file_size",
            "counts",
            "consensus_runs",
            "adjudications",
            "model_versions",
            "created_at",
            "finished_at",
            "download",
        ]
        read_only_fields = fields

    def get_download(self, export: TrainingExport) -> str | None:
        if export.status != ExportStatus.READY:
            return None
        return f"/api/exports/{export.pk}/download/"


class ExportRequestSerializer(serializers.Serializer):
    """The choices (all optional; defaults: every class, consensus, target_mpp, 256 px)."""

    # The ranges are ExportConfig.check()'s, stated here too so the schema documents them.
    class_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=256,
    )
    labels = serializers.ChoiceField(["consensus", "adjudicated"], required=False)
    min_agreement = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    mpp = serializers.FloatField(required=False, allow_null=True, min_value=0.05, max_value=100)
    patch_size = serializers.IntegerField(required=False, min_value=16, max_value=4096)
    stride = serializers.IntegerField(required=False, min_value=1, max_value=4096)
    split_by = serializers.ChoiceField(["slide", "case"], required=False)
    fractions = serializers.ListField(
        child=serializers.FloatField(min_value=0.0, max_value=1.0),
        required=False,
        min_length=3,
        max_length=3,
    )
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**32 - 1)
    image_format = serializers.ChoiceField(["png", "jpeg"], required=False)


class ProjectExportsView(APIView):
    """List a project's exports, or request a new one (built by a Celery task)."""

    @extend_schema(responses=TrainingExportSerializer(many=True))
    def get(self, request: Request, project_pk: int) -> Response:
        return Response(
            TrainingExportSerializer(exports_of(request.user, project_pk), many=True).data
        )

    @extend_schema(request=ExportRequestSerializer, responses={201: TrainingExportSerializer})
    def post(self, request: Request, project_pk: int) -> Response:
        project = access_project_for_exports(request.user, project_pk)
        body = ExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            export = export_create(
                project=project, user=request.user, data=dict(body.validated_data)
            )
        except ConfigError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(TrainingExportSerializer(export).data, status=status.HTTP_201_CREATED)


class ExportDetailView(APIView):
    """One export: status and progress while it builds, hash and counts once ready."""

    @extend_schema(responses=TrainingExportSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(TrainingExportSerializer(access_export(request.user, pk)).data)


class ExportDownloadView(APIView):
    """The archive (zip), once ready; 409 while it builds or after it failed."""

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            409: OpenApiTypes.OBJECT,
            410: OpenApiTypes.OBJECT,
        }
    )
    def get(self, request: Request, pk: int) -> Response | FileResponse:
        export = access_export(request.user, pk)
        if export.status != ExportStatus.READY:
            return Response(
                {"detail": f"the export is {export.status}, not ready"},
                status=status.HTTP_409_CONFLICT,
            )
        path = Path(settings.MEDIA_ROOT) / export.file_path
        if not path.is_file():
            return Response(
                {"detail": "the archive is no longer stored; build the export again"},
                status=status.HTTP_410_GONE,
            )
        response = FileResponse(
            open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename=f"export-{export.pk}-{export.export_hash[:16]}.zip",
            content_type="application/zip",
        )
        response["ETag"] = f'"{export.export_hash}"'
        response["Cache-Control"] = "private, max-age=3600"
        return response


class ExportLineageView(APIView):
    """Export -> consensus runs -> annotations; export -> adjudications and model versions."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: int) -> Response:
        return Response(export_lineage(access_export(request.user, pk)))


class ResearchAgreementView(APIView):
    """Agreement per region and annotators' reliability under pseudonyms."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, project_pk: int) -> Response:
        return Response(research_agreement(request.user, project_pk))


class ResearchModelVersionsView(APIView):
    """The project's model versions, their metrics and the answers they learnt from."""

    @extend_schema(responses={200: {"type": "array", "items": {"type": "object"}}})
    def get(self, request: Request, project_pk: int) -> Response:
        return Response(research_model_versions(request.user, project_pk))
