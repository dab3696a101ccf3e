"""The campaign REST API: classes, regions, assignments, drafts and submission, history."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.api_scoping import ProjectScopedMixin
from annotation.filters import RegionFilterSet
from annotation.models import Assignment, LabelClass, Region, RegionOrigin, Role, Submission
from annotation.pseudonyms import PersonNamer
from annotation.selectors import (
    access_assignment,
    access_project_as_manager,
    access_region,
    assignments_visible_to,
    project_ids_seeing_origin,
    regions_visible_to,
    role_in,
    submissions_visible_to,
)
from annotation.serializers_campaign import (
    AssignmentSerializer,
    DraftSerializer,
    HistorySerializer,
    LabelClassSerializer,
    ReassignSerializer,
    RegionSerializer,
    SubmissionSerializer,
    SubmitSerializer,
)
from annotation.services import assignments as assignment_services
from annotation.services import regions as region_services
from annotation.services import submissions as submission_services
from annotation.services.label_classes import LabelClassLimit, label_classes_reserve
from slides.models import Slide

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The version from the ETag, e.g. "3".',
)


def _etag(submission: Submission) -> str:
    return f'"{submission.version}"'


def _expected_version(request: Request) -> int:
    """The If-Match version; 428 when missing, 412 when unparsable (it cannot match)."""
    raw = request.headers.get("If-Match")
    if raw is None:
        raise PreconditionRequired()
    try:
        return int(raw.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise PreconditionFailed() from None


class PreconditionRequired(ValidationError):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = "Send If-Match with the version you edited (the ETag of your last read)."


class PreconditionFailed(ValidationError):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "Someone saved a newer version: reload, then edit again."


class AssignmentClosedConflict(APIException):
    """409: the slot takes no more work (released, reassigned, expired, or excluded member)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "assignment_closed"


class UnsavedDraftSerializer(SubmissionSerializer):
    """The empty draft of an untouched region (no row yet, so no shapes relation to read)."""

    class Meta(SubmissionSerializer.Meta):
        fields = [f for f in SubmissionSerializer.Meta.fields if f != "shapes"]
        read_only_fields = fields


class LabelClassViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """A project's label classes: members read them, managers change them."""

    serializer_class = LabelClassSerializer
    queryset = LabelClass.objects.none()
    pagination_class = None

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return LabelClass.objects.none()
        return LabelClass.objects.filter(project=self._project())

    def perform_create(self, serializer: LabelClassSerializer) -> None:
        project = self._project()
        name = serializer.validated_data["name"]
        if LabelClass.objects.filter(project=project, name=name).exists():
            raise ValidationError({"name": ["a class with this name exists"]})
        if (
            serializer.validated_data.get("is_background")
            and LabelClass.objects.filter(project=project, is_background=True).exists()
        ):
            raise ValidationError({"is_background": ["the project has a background class"]})
        with transaction.atomic():
            try:
                label_classes_reserve(project=project, adding=1)
            except LabelClassLimit as exc:
                raise ValidationError({"detail": str(exc)}) from None
            serializer.save(project=project)

    def perform_update(self, serializer: LabelClassSerializer) -> None:
        # The same rules as create: a rename onto another class's name (or a second background
        # class) would otherwise reach the database constraint and answer 500.
        project = self._project()
        others = LabelClass.objects.filter(project=project).exclude(pk=serializer.instance.pk)
        name = serializer.validated_data.get("name")
        if name is not None and others.filter(name=name).exists():
            raise ValidationError({"name": ["a class with this name exists"]})
        if (
            serializer.validated_data.get("is_background")
            and others.filter(is_background=True).exists()
        ):
            raise ValidationError({"is_background": ["the project has a background class"]})
        serializer.save()

    def perform_destroy(self, instance: LabelClass) -> None:
        from django.db.models import ProtectedError

        try:
            instance.delete()
        except ProtectedError:
            raise ValidationError({"detail": "the class is in use; rename it instead"}) from None


class RegionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Regions: managers draw them, experts create gold ones; annotators see their own."""

    serializer_class = RegionSerializer
    filterset_class = RegionFilterSet
    queryset = Region.objects.none()

    def get_queryset(self) -> QuerySet:
        return regions_visible_to(self.request.user).order_by("pk")

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        # Annotators are never told which regions are gold; decided by each region's project.
        context["origin_projects"] = project_ids_seeing_origin(self.request.user)
        return context

    def get_object(self) -> Region:
        return access_region(self.request.user, int(self.kwargs["pk"]))

    def perform_create(self, serializer: RegionSerializer) -> None:
        data = serializer.validated_data
        project = data["project"]
        role = role_in(self.request.user, project)
        allowed = {
            RegionOrigin.MANUAL: {Role.MANAGER},
            RegionOrigin.GOLD: {Role.EXPERT, Role.MANAGER},
        }
        if role not in allowed[data["origin"]]:
            raise Http404("No such project.")
        slide = Slide.objects.filter(pk=data["slide"].pk).first()
        try:
            serializer.instance = region_services.region_create(
                project=project,
                slide=slide,
                x=data["x"],
                y=data["y"],
                width=data["width"],
                height=data["height"],
                origin=data["origin"],
                created_by=self.request.user,
            )
        except region_services.RegionError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        if serializer.instance.origin == RegionOrigin.GOLD:
            # The expert who makes a gold region draws its reference outline next.
            self.expert_assignment = assignment_services.assignment_for_expert(
                region=serializer.instance, user=self.request.user
            )

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Create a region; a gold one answers with the expert's ``assignment`` to outline it."""
        response = super().create(request, *args, **kwargs)
        expert_assignment = getattr(self, "expert_assignment", None)
        if expert_assignment is not None:
            response.data["assignment"] = expert_assignment.pk
        return response

    @extend_schema(responses={200: SubmissionSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def submissions(self, request: Request, pk: str) -> Response:
        """Work on this region visible to the caller (blind: an annotator sees only theirs)."""
        region = access_region(request.user, int(pk))
        rows = submissions_visible_to(request.user, region).prefetch_related("shapes")
        page = self.paginate_queryset(rows.order_by("pk"))
        context = {
            "namer": PersonNamer(request.user, region.project),
            "sees_origin": region.project_id in project_ids_seeing_origin(request.user),
        }
        return self.get_paginated_response(
            SubmissionSerializer(page, many=True, context=context).data
        )

    @extend_schema(responses={200: HistorySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str) -> Response:
        """Audit trail of the submissions on this region the caller may see."""
        from annotation.models import SubmissionHistory

        region = access_region(request.user, int(pk))
        visible = submissions_visible_to(request.user, region).values("pk")
        rows = SubmissionHistory.objects.filter(submission__in=visible).select_related("user")
        page = self.paginate_queryset(rows.order_by("pk"))
        context = {"namer": PersonNamer(request.user, region.project)}
        return self.get_paginated_response(HistorySerializer(page, many=True, context=context).data)


class AssignmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Assignments: an annotator's own, or all of the projects a manager runs."""

    serializer_class = AssignmentSerializer
    filterset_fields = ["status", "region__project"]
    queryset = Assignment.objects.none()

    def get_queryset(self) -> QuerySet:
        return (
            assignments_visible_to(self.request.user)
            .select_related("region", "annotator")
            .order_by("pk")
        )

    def get_object(self):  # noqa: ANN201
        return access_assignment(self.request.user, int(self.kwargs["pk"]))

    def _own(self, pk: str):  # noqa: ANN202
        assignment = access_assignment(self.request.user, int(pk))
        if assignment.annotator_id != self.request.user.pk:
            raise Http404("No such assignment.")
        return assignment

    def _managed(self, pk: str):  # noqa: ANN202
        assignment = access_assignment(self.request.user, int(pk))
        access_project_as_manager(self.request.user, assignment.region.project_id)
        return assignment

    @extend_schema(request=None, responses={200: AssignmentSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str) -> Response:
        """Free the slot (managers)."""
        assignment = assignment_services.assignment_release(assignment=self._managed(pk))
        return Response(AssignmentSerializer(assignment).data)

    @extend_schema(request=ReassignSerializer, responses={200: AssignmentSerializer})
    @action(detail=True, methods=["post"])
    def reassign(self, request: Request, pk: str) -> Response:
        """Move an active slot to another annotator (managers)."""
        assignment = self._managed(pk)
        body = ReassignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        to_user = get_user_model().objects.filter(username=body.validated_data["username"]).first()
        if to_user is None:
            raise ValidationError({"username": ["no such user"]})
        try:
            new = assignment_services.assignment_reassign(assignment=assignment, to_user=to_user)
        except assignment_services.AssignmentError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(AssignmentSerializer(new).data)

    @extend_schema(methods=["GET"], request=None, responses={200: SubmissionSerializer})
    @extend_schema(
        methods=["PUT"],
        request=DraftSerializer,
        parameters=[IF_MATCH],
        responses={
            200: SubmissionSerializer,
            409: OpenApiResponse(description="The assignment takes no more work."),
            412: OpenApiResponse(description="Stale version."),
            428: OpenApiResponse(description="If-Match missing."),
        },
    )
    @action(detail=True, methods=["get", "put"])
    def work(self, request: Request, pk: str) -> Response:
        """The caller's draft or submission for this assignment; PUT autosaves the draft."""
        assignment = self._own(pk)
        if request.method == "GET":
            # Reading never writes: a region not yet touched shows an empty draft, version 1.
            submission = Submission.objects.filter(
                region=assignment.region, annotator=request.user
            ).first() or Submission(region=assignment.region, annotator=request.user, version=1)
            return self._submission_response(submission)
        expected = _expected_version(request)
        body = DraftSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        shapes = [
            submission_services.ShapeInput(s["label_class"], s["geometry"])
            for s in body.validated_data["shapes"]
        ]
        try:
            result = submission_services.submission_save_draft(
                assignment=assignment,
                expected_version=expected,
                shapes=shapes,
                region_label_id=body.validated_data.get("region_label"),
                time_spent_seconds=body.validated_data["time_spent_seconds"],
                shown=body.validated_data.get("shown"),
            )
        except submission_services.StaleVersion:
            raise PreconditionFailed() from None
        except submission_services.AssignmentClosed as exc:
            raise AssignmentClosedConflict(str(exc)) from None
        except submission_services.SubmissionError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return self._submission_response(result.submission, repairs=result.repairs)

    @extend_schema(
        request=SubmitSerializer,
        parameters=[IF_MATCH],
        responses={
            200: SubmissionSerializer,
            409: OpenApiResponse(description="The assignment takes no more work."),
            412: OpenApiResponse(description="Stale."),
        },
    )
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Make the work final: shapes, "nothing" or "cannot_assess" (with a reason)."""
        assignment = self._own(pk)
        expected = _expected_version(request)
        body = SubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            submission = submission_services.submission_submit(
                assignment=assignment,
                expected_version=expected,
                user=request.user,
                outcome=body.validated_data["outcome"],
                cannot_assess_reason=body.validated_data["cannot_assess_reason"],
            )
        except submission_services.StaleVersion:
            raise PreconditionFailed() from None
        except submission_services.AssignmentClosed as exc:
            raise AssignmentClosedConflict(str(exc)) from None
        except submission_services.SubmissionError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return self._submission_response(submission)

    @staticmethod
    def _submission_response(submission: Submission, repairs: list | None = None) -> Response:
        if submission.pk is not None:
            submission = Submission.objects.prefetch_related("shapes").get(pk=submission.pk)
            data = SubmissionSerializer(submission).data
        else:
            data = {**UnsavedDraftSerializer(submission).data, "shapes": []}
        if repairs is not None:
            data["repairs"] = repairs
        response = Response(data)
        response["ETag"] = _etag(submission)
        return response
