"""DRF serializers for slides."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from slides.models import Slide, SlideAccess
from slides.selectors import user_manages_slide


class SlideSerializer(serializers.ModelSerializer):
    """A slide's metadata; the server path only for the slide's managers."""

    dzi_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    path = serializers.SerializerMethodField()
    mpp = serializers.FloatField(read_only=True, allow_null=True)
    project_ids = serializers.SerializerMethodField()

    class Meta:
        model = Slide
        fields = [
            "id",
            "name",
            "path",
            "case_key",
            "status",
            "status_reason",
            "vendor",
            "width",
            "height",
            "level_count",
            "level_dimensions",
            "level_downsamples",
            "mpp",
            "mpp_x",
            "mpp_y",
            "mpp_source",
            "objective_power",
            "associated_images",
            "file_size",
            "checksum",
            "tissue_fraction",
            "deepzoom",
            "tiles_prebuilt",
            "tiles_prebuild_seconds",
            "tiles_prebuild_bytes",
            "dzi_url",
            "thumbnail_url",
            "project_ids",
            "created_at",
        ]
        read_only_fields = fields

    def get_dzi_url(self, slide: Slide) -> str:
        return reverse("slides:dzi", args=[slide.pk])

    def get_thumbnail_url(self, slide: Slide) -> str:
        return reverse("slide-thumbnail", args=[slide.pk])

    def get_path(self, slide: Slide) -> str | None:
        request = self.context.get("request")
        if request is not None and user_manages_slide(request.user, slide.pk):
            return slide.path
        return None

    def get_project_ids(self, slide: Slide) -> list[int]:
        request = self.context.get("request")
        if request is None:
            return []
        return sorted(
            slide.projects.filter(memberships__user=request.user).values_list("pk", flat=True)
        )


class CropQuerySerializer(serializers.Serializer):
    """A level-0 rectangle and either a pyramid level or a target resolution."""

    x = serializers.IntegerField(min_value=0)
    y = serializers.IntegerField(min_value=0)
    width = serializers.IntegerField(min_value=1)
    height = serializers.IntegerField(min_value=1)
    level = serializers.IntegerField(min_value=0, required=False)
    mpp = serializers.FloatField(min_value=0.01, max_value=1000, required=False)
    format = serializers.ChoiceField(choices=["png", "jpeg"], default="png")
    quality = serializers.IntegerField(min_value=1, max_value=100, default=90)

    def validate(self, attrs: dict) -> dict:
        if "level" in attrs and "mpp" in attrs:
            raise serializers.ValidationError("give either level or mpp, not both")
        return attrs


class SetMppSerializer(serializers.Serializer):
    mpp = serializers.FloatField(min_value=0.01, max_value=100)


class SlideAccessSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = SlideAccess
        fields = ["user", "username", "slide", "day", "first_seen"]
        read_only_fields = fields
