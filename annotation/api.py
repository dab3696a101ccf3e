"""The projects REST API: projects, members, slide import and upload."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import IntegrityError
from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import services
from annotation.api_scoping import ProjectScopedMixin
from annotation.models import Membership, Project, Role
from annotation.selectors import (
    access_project,
    access_project_as_manager,
    project_ids_seeing_origin,
    projects_for,
    role_in,
)
from annotation.serializers import (
    MembershipSerializer,
    ProjectSerializer,
    RegisterSlideSerializer,
    UploadSlideSerializer,
)
from annotation.serializers_campaign import (
    AssignmentSerializer,
    ExcludeSerializer,
    ExportAnnotationsQuerySerializer,
    ImportAnnotationsSerializer,
    InviteCsvSerializer,
    RegionSerializer,
    SeedRegionsSerializer,
)
from annotation.services import assignments as assignment_services
from annotation.services import interchange
from annotation.services import members as member_services
from annotation.services import regions as region_services
from slides.archives import UnsafeArchive
from slides.paths import PathNotAllowed
from slides.serializers import SlideSerializer
from slides.uploads import CappedTemporaryFileUploadHandler


class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Projects the caller belongs to; staff create them, managers edit them."""

    serializer_class = ProjectSerializer

    def get_queryset(self):  # noqa: ANN201 - DRF's signature
        return projects_for(self.request.user).prefetch_related("memberships").order_by("name")

    def get_object(self) -> Project:
        project_id = int(self.kwargs["pk"])
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return access_project(self.request.user, project_id)
        return access_project_as_manager(self.request.user, project_id)

    def perform_create(self, serializer: ProjectSerializer) -> None:
        user = self.request.user
        if not (user.is_staff or user.has_perm("annotation.add_project")):
            raise PermissionDenied("Only staff may create projects.")
        try:
            serializer.instance = services.project_create(
                created_by=user, **serializer.validated_data
            )
        except IntegrityError:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"slug": ["a project with this slug exists"]}) from None

    @extend_schema(
        request=RegisterSlideSerializer, responses={201: SlideSerializer, 200: SlideSerializer}
    )
    @action(detail=True, methods=["post"], url_path="slides")
    def register_slide(self, request: Request, pk: str) -> Response:
        """Register a server file (under SLIDE_ROOTS) in this project (managers)."""
        project = access_project_as_manager(request.user, int(pk))
        body = RegisterSlideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            slide, created = services.project_add_slide_by_path(
                project=project,
                path=body.validated_data["path"],
                created_by=request.user,
                case_key=body.validated_data["case_key"],
            )
        except PathNotAllowed as exc:
            return Response({"path": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        data = SlideSerializer(slide, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        request={"multipart/form-data": UploadSlideSerializer},
        responses={
            201: SlideSerializer,
            400: OpenApiResponse(description="Refused upload."),
            413: OpenApiResponse(description="Over SLIDE_UPLOAD_MAX_BYTES."),
        },
    )
    @action(detail=True, methods=["post"], url_path="upload", parser_classes=[MultiPartParser])
    def upload_slide(self, request: Request, pk: str) -> Response:
        """Upload a slide file, or a zip of a multi-file slide, streamed to disk (managers)."""
        project = access_project_as_manager(request.user, int(pk))
        too_large = Response(
            {"detail": f"the upload exceeds {settings.SLIDE_UPLOAD_MAX_BYTES} bytes"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.SLIDE_UPLOAD_MAX_BYTES + 1024 * 1024:
            return too_large
        handler = CappedTemporaryFileUploadHandler(request._request)
        request._request.upload_handlers = [handler]
        body = UploadSlideSerializer(data=request.data)
        if handler.exceeded:
            return too_large
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        try:
            slide = services.project_add_uploaded_slide(
                project=project,
                uploaded_path=Path(upload.temporary_file_path()),
                original_name=upload.name,
                created_by=request.user,
                case_key=body.validated_data["case_key"],
            )
        except (UnsafeArchive, PathNotAllowed) as exc:
            return Response({"file": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        finally:
            upload.close()
        return Response(
            SlideSerializer(slide, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=None,
        responses={200: AssignmentSerializer, 204: OpenApiResponse(description="Nothing left.")},
    )
    @action(detail=True, methods=["post"], url_path="next-region")
    def next_region(self, request: Request, pk: str) -> Response:
        """The caller's current or next assignment (annotators); 204 when nothing is left."""
        project = access_project(request.user, int(pk), roles=[Role.ANNOTATOR])
        try:
            assignment = assignment_services.assignment_next(project=project, user=request.user)
        except assignment_services.AssignmentError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSerializer(assignment).data)

    @extend_schema(request=SeedRegionsSerializer, responses={201: RegionSerializer(many=True)})
    @action(detail=True, methods=["post"], url_path="seed-regions", pagination_class=None)
    def seed_regions(self, request: Request, pk: str) -> Response:
        """Round 0: n non-overlapping regions per slide on tissue (managers)."""
        project = access_project_as_manager(request.user, int(pk))
        body = SeedRegionsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        regions = region_services.regions_seed(
            project=project,
            per_slide=body.validated_data["per_slide"],
            seed=body.validated_data["seed"],
            created_by=request.user,
            min_tissue=body.validated_data["min_tissue"],
        )
        context = {"origin_projects": project_ids_seeing_origin(request.user)}
        return Response(
            RegionSerializer(regions, many=True, context=context).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request={"multipart/form-data": InviteCsvSerializer},
        responses={200: OpenApiResponse(description="created/added/errors lists")},
    )
    @action(detail=True, methods=["post"], url_path="invite-csv", parser_classes=[MultiPartParser])
    def invite_csv(self, request: Request, pk: str) -> Response:
        """Invite members from a CSV of username,email,role (managers); all or nothing."""
        project = access_project_as_manager(request.user, int(pk))
        body = InviteCsvSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["file"]
        if upload.size > 1024 * 1024:
            return Response({"file": ["at most 1 MB"]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            return Response(
                {"file": ["the file must be UTF-8 text"]}, status=status.HTTP_400_BAD_REQUEST
            )
        report = member_services.members_invite_csv(
            project=project, text=text, request=request._request
        )
        code = status.HTTP_400_BAD_REQUEST if report.errors else status.HTTP_200_OK
        return Response(
            {"created": report.created, "added": report.added, "errors": report.errors}, status=code
        )

    @extend_schema(
        request={"multipart/form-data": ImportAnnotationsSerializer},
        responses={201: OpenApiResponse(description="imported/skipped report")},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="import-annotations",
        parser_classes=[MultiPartParser],
    )
    def import_annotations(self, request: Request, pk: str) -> Response:
        """Import QuPath GeoJSON, ASAP XML or Aperio XML onto a slide, under a source name."""
        project = access_project_as_manager(request.user, int(pk))
        body = ImportAnnotationsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        slide = project.slides.filter(pk=body.validated_data["slide"]).first()
        if slide is None or slide.status != "ready":
            return Response(
                {"slide": ["no ready slide with this id in the project"]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        upload = body.validated_data["file"]
        if upload.size > settings.ANNOTATION_IMPORT_MAX_BYTES:
            return Response(
                {"file": [f"files over {settings.ANNOTATION_IMPORT_MAX_BYTES} bytes are refused"]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            report = interchange.annotations_import(
                project=project,
                slide=slide,
                data=upload.read(),
                filename=upload.name,
                source=body.validated_data["source"],
                user=request.user,
            )
        except ValueError as exc:
            return Response({"file": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(vars(report), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[ExportAnnotationsQuerySerializer],
        responses={200: OpenApiResponse(description="The annotation file.")},
    )
    @action(detail=True, methods=["get"], url_path="export-annotations")
    def export_annotations(self, request: Request, pk: str) -> HttpResponse:
        """A slide's submitted (or imported) shapes as QuPath GeoJSON, ASAP or Aperio XML."""
        project = access_project(
            request.user, int(pk), roles=[Role.MANAGER, Role.EXPERT, Role.RESEARCHER]
        )
        query = ExportAnnotationsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        slide = project.slides.filter(pk=query.validated_data["slide"]).first()
        if slide is None:
            raise Http404("No such slide in this project.")
        fmt = query.validated_data["format"]
        data = interchange.annotations_export(
            project=project, slide=slide, fmt=fmt, what=query.validated_data["source"]
        )
        suffix, content_type = {
            "geojson": ("geojson", "application/geo+json"),
            "asap": ("xml", "application/xml"),
            "aperio": ("xml", "application/xml"),
        }[fmt]
        response = HttpResponse(data, content_type=content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="project{project.pk}-slide{slide.pk}-{fmt}.{suffix}"'
        )
        return response


class MembershipViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of one project: everyone in it reads the list, managers change it."""

    serializer_class = MembershipSerializer
    queryset = Membership.objects.none()  # for the schema generator; requests use get_queryset

    def get_queryset(self):  # noqa: ANN201 - DRF's signature
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(project=self._project()).select_related("user")

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["reader_is_manager"] = (
                role_in(self.request.user, self._project()) == Role.MANAGER
            )
        return context

    def perform_create(self, serializer: MembershipSerializer) -> None:
        serializer.instance = services.membership_set(
            project=self._project(),
            user=serializer.validated_data["user"],
            role=serializer.validated_data["role"],
        )

    def perform_update(self, serializer: MembershipSerializer) -> None:
        membership = serializer.instance
        # Only the role changes; moving a membership to another user is remove + add.
        serializer.instance = services.membership_set(
            project=membership.project,
            user=membership.user,
            role=serializer.validated_data.get("role", membership.role),
        )

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_remove(membership=instance)

    @extend_schema(request=ExcludeSerializer, responses={200: MembershipSerializer})
    @action(detail=True, methods=["post"])
    def exclude(self, request: Request, project_pk: str, pk: str) -> Response:
        """Exclude an annotator: no more regions, their labels stop counting (managers)."""
        project = access_project_as_manager(request.user, int(project_pk))
        membership = Membership.objects.filter(project=project, pk=int(pk)).first()
        if membership is None:
            raise Http404("No such member.")
        body = ExcludeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member_services.member_exclude(
            membership=membership, by=request.user, reason=body.validated_data["reason"]
        )
        membership.refresh_from_db()
        return Response(MembershipSerializer(membership).data)
