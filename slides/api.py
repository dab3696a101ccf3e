"""The slides REST API: metadata, thumbnails, crops, associated images, manual mpp."""

from __future__ import annotations

from contextlib import nullcontext

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from slides import services
from slides.crops import (
    CropTooLarge,
    check_crop_size,
    check_source_size,
    crop_plan,
    encode,
    render_plan,
)
from slides.models import Slide, SlideAccess, SlideStatus
from slides.readers import SLIDE_ERRORS
from slides.readgate import ReadGateBusy, heavy_read_gate
from slides.selectors import access_slide, access_slide_as_manager, slides_visible_to
from slides.serializers import (
    CropQuerySerializer,
    SetMppSerializer,
    SlideAccessSerializer,
    SlideSerializer,
)
from slides.tiling import Box

IMAGE_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="An image.")
# Keyed by (status, media type), so the schema says image/png rather than application/json.
PNG = {(200, "image/png"): IMAGE_RESPONSE}


def _ready(slide: Slide) -> Slide:
    if slide.status != SlideStatus.READY:
        raise Http404("The slide is not ready.")
    return slide


class SlideViewSet(viewsets.ReadOnlyModelViewSet):
    """Slides of the projects the user belongs to."""

    serializer_class = SlideSerializer
    filterset_fields = ["status", "projects", "case_key"]

    def get_queryset(self):  # noqa: ANN201 - DRF's signature
        return slides_visible_to(self.request.user).order_by("name", "id")

    @extend_schema(responses=PNG)
    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, pk: str) -> HttpResponse:
        """The slide's thumbnail (PNG, at most THUMBNAIL_MAX_SIDE a side)."""
        slide = _ready(access_slide(request.user, int(pk)))
        services.slide_record_access(user_id=request.user.pk, slide_id=slide.pk)
        response = FileResponse(open(slide.thumbnail, "rb"), content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    @extend_schema(responses=PNG)
    @action(detail=True, methods=["get"], url_path="tissue-mask")
    def tissue_mask(self, request: Request, pk: str) -> HttpResponse:
        """The tissue mask on the thumbnail grid (PNG, white = tissue)."""
        slide = _ready(access_slide(request.user, int(pk)))
        return FileResponse(open(slide.tissue_mask, "rb"), content_type="image/png")

    @extend_schema(
        parameters=[CropQuerySerializer],
        responses={
            **PNG,
            (200, "image/jpeg"): IMAGE_RESPONSE,
            400: OpenApiResponse(description="Bad or too large (output or source read)."),
            503: OpenApiResponse(description="Heavy reads busy (Retry-After) or unreadable."),
        },
    )
    @action(detail=True, methods=["get"])
    def crop(self, request: Request, pk: str) -> HttpResponse | Response:
        """A level-0 rectangle rendered at a pyramid level or a target mpp, as PNG or JPEG."""
        slide = _ready(access_slide(request.user, int(pk)))
        query = CropQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        box = Box(q["x"], q["y"], q["width"], q["height"])
        if box.x1 > slide.width or box.y1 > slide.height:
            return _bad_request(f"the rectangle leaves the slide ({slide.width}x{slide.height})")
        if "mpp" in q:
            if not slide.mpp:
                return _bad_request("this slide has no mpp; ask a manager to set it")
            downsample = q["mpp"] / slide.mpp
        else:
            level = q.get("level", 0)
            if level >= slide.level_count:
                return _bad_request(f"level must be below {slide.level_count}")
            downsample = slide.level_downsamples[level]
        try:
            check_crop_size(
                box,
                downsample,
                max_pixels=settings.CROP_MAX_PIXELS,
                max_side=settings.CROP_MAX_SIDE,
            )
            plan = crop_plan(box, downsample, slide.level_downsamples, (slide.width, slide.height))
            # Refused before anything is read: the cap bounds the work, not just the answer.
            check_source_size(plan, max_source_pixels=settings.CROP_MAX_SOURCE_PIXELS)
        except CropTooLarge as exc:
            return _bad_request(str(exc))
        services.slide_record_access(user_id=request.user.pk, slide_id=slide.pk)
        gate = (
            heavy_read_gate().slot(settings.CROP_HEAVY_WAIT_SECONDS)
            if plan.source_pixels > settings.CROP_HEAVY_SOURCE_PIXELS
            else nullcontext()
        )
        try:
            with gate:
                image = render_plan(
                    slide.path, plan, max_source_pixels=settings.CROP_MAX_SOURCE_PIXELS
                )
        except ReadGateBusy:
            response = Response(
                {"detail": "Too many large crops are being read; retry shortly."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
            response["Retry-After"] = "1"
            return response
        except SLIDE_ERRORS:
            return Response(
                {"detail": "The slide could not be read."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        data, content_type = encode(image, q["format"], q["quality"])
        response = HttpResponse(data, content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        return response

    @extend_schema(responses=PNG)
    @action(detail=True, methods=["get"], url_path=r"associated/(?P<image_name>[A-Za-z0-9_.-]+)")
    def associated(self, request: Request, pk: str, image_name: str) -> HttpResponse:
        """A label, macro or other associated image: managers only (patient identifiers)."""
        slide = _ready(access_slide_as_manager(request.user, int(pk)))
        if image_name not in slide.associated_images:
            raise Http404("No such associated image.")
        import io

        import openslide

        try:
            with openslide.OpenSlide(slide.path) as handle:
                image = handle.associated_images[image_name].convert("RGB")
        except SLIDE_ERRORS:
            return Response(
                {"detail": "The slide could not be read."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        response = HttpResponse(buffer.getvalue(), content_type="image/png")
        response["Cache-Control"] = "private, no-store"
        return response

    @extend_schema(request=SetMppSerializer, responses={200: SlideSerializer})
    @action(detail=True, methods=["post"], url_path="set-mpp")
    def set_mpp(self, request: Request, pk: str) -> Response:
        """Set the resolution of a slide whose file lacks it (managers)."""
        slide = access_slide_as_manager(request.user, int(pk))
        body = SetMppSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        slide = services.slide_set_mpp(slide=slide, mpp=body.validated_data["mpp"])
        return Response(SlideSerializer(slide, context={"request": request}).data)

    @extend_schema(request=None, responses={200: SlideSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """Queue ingest again for a FAILED slide (managers)."""
        slide = access_slide_as_manager(request.user, int(pk))
        if slide.status != SlideStatus.FAILED:
            return _bad_request("only a failed slide can be retried")
        slide = services.slide_retry_ingest(slide=slide)
        return Response(SlideSerializer(slide, context={"request": request}).data)

    @extend_schema(responses={200: SlideAccessSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="access-log")
    def access_log(self, request: Request, pk: str) -> Response:
        """Who opened this slide, per day (managers; data governance)."""
        slide = access_slide_as_manager(request.user, int(pk))
        rows = SlideAccess.objects.filter(slide=slide).select_related("user")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(SlideAccessSerializer(page, many=True).data)


def _bad_request(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_400_BAD_REQUEST)
