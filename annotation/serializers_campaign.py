"""DRF serializers for the campaign: classes, regions, assignments, submissions, history."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from rest_framework import serializers

from annotation.models import (
    Assignment,
    GuidelineImage,
    LabelClass,
    Outcome,
    Region,
    RegionOrigin,
    Shape,
    Submission,
    SubmissionHistory,
)
from annotation.pseudonyms import name_person


class LabelClassSerializer(serializers.ModelSerializer):
    """A class annotators draw or pick."""

    class Meta:
        model = LabelClass
        fields = ["id", "name", "color", "order", "is_background", "shortcut"]


class GuidelineImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = GuidelineImage
        fields = ["id", "image", "caption", "order"]


class RegionOriginField(serializers.ChoiceField):
    """Written as ``manual`` or ``gold``; read as any origin (seeded and proposed too)."""


class RegionOriginFieldExtension(OpenApiSerializerFieldExtension):
    """The schema says so per direction, so a seeded region's answer matches the schema."""

    target_class = RegionOriginField

    def map_serializer_field(self, auto_schema: object, direction: str) -> dict:
        values = [c[0] for c in self.target.choices.items()]
        if direction == "response":
            values = list(RegionOrigin.values)
        return {"type": "string", "enum": values}


# What an annotator's view of a region leaves out: each differs between gold and other regions.
ANNOTATOR_HIDDEN_REGION_FIELDS = ("origin", "round_number", "learning_ref", "status", "created_at")


class RegionSerializer(serializers.ModelSerializer):
    """A level-0 rectangle on a slide of the project."""

    origin = RegionOriginField(
        choices=[RegionOrigin.MANUAL, RegionOrigin.GOLD], default=RegionOrigin.MANUAL
    )
    dzi_url = serializers.SerializerMethodField()

    class Meta:
        model = Region
        fields = [
            "id",
            "project",
            "slide",
            "x",
            "y",
            "width",
            "height",
            "origin",
            "round_number",
            "learning_ref",
            "status",
            "dzi_url",
            "created_at",
        ]
        read_only_fields = ["id", "round_number", "learning_ref", "status", "dzi_url", "created_at"]

    def get_fields(self) -> dict:
        """``project`` and ``slide`` choose among the caller's own: another project's id is
        refused exactly like an id that does not exist (no oracle for which ids exist)."""
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None:
            from annotation.selectors import projects_for
            from slides.selectors import slides_visible_to

            fields["project"].queryset = projects_for(request.user)
            fields["slide"].queryset = slides_visible_to(request.user)
        return fields

    def get_dzi_url(self, region: Region) -> str:
        return reverse("slides:dzi", args=[region.slide_id])

    def to_representation(self, region: Region) -> dict:
        data = super().to_representation(region)
        data["origin"] = region.origin
        # Gold regions are mixed into queues unannounced: where the caller annotates, the
        # answer carries nothing that tells a gold region from another (no origin; no round,
        # status, learning reference or creation time, which differ for gold regions).
        if region.project_id not in self.context.get("origin_projects", ()):
            for hidden in ANNOTATOR_HIDDEN_REGION_FIELDS:
                data.pop(hidden, None)
        return data


class RegionSerializerExtension(OpenApiSerializerExtension):
    """The schema says which fields an annotator's answer leaves out (they are optional)."""

    target_class = "annotation.serializers_campaign.RegionSerializer"

    def map_serializer(self, auto_schema: object, direction: str) -> dict:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "response" and "required" in schema:
            schema["required"] = [
                name for name in schema["required"] if name not in ANNOTATOR_HIDDEN_REGION_FIELDS
            ]
        return schema


class SeedRegionsSerializer(serializers.Serializer):
    per_slide = serializers.IntegerField(min_value=1, max_value=1000)
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)
    min_tissue = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.6)


class AssignmentSerializer(serializers.ModelSerializer):
    """A slot of a region for one annotator (origin hidden: gold is unannounced)."""

    region = serializers.SerializerMethodField()
    annotator = serializers.CharField(source="annotator.username", read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "region",
            "annotator",
            "status",
            "assigned_at",
            "expires_at",
            "submitted_at",
        ]
        read_only_fields = fields

    def get_region(self, assignment: Assignment) -> dict:
        r = assignment.region
        return {
            "id": r.pk,
            "slide": r.slide_id,
            "x": r.x,
            "y": r.y,
            "width": r.width,
            "height": r.height,
            "dzi_url": reverse("slides:dzi", args=[r.slide_id]),
        }


class ReassignSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)


class ShapeSerializer(serializers.ModelSerializer):
    """A polygon or multipolygon in level-0 pixels (GeoJSON) with its class."""

    label_class = serializers.IntegerField(source="label_class_id")
    geometry = serializers.JSONField()

    class Meta:
        model = Shape
        fields = ["id", "label_class", "geometry", "area", "vertex_count"]
        read_only_fields = ["id", "area", "vertex_count"]


def hide_gold_score(data: dict, context: dict) -> None:
    """A score against an expert outline marks a gold region: only readers who may know which
    regions are gold read it (never the annotator, before or after submitting)."""
    if not context.get("sees_origin", False):
        data["gold_dice"] = None


class SubmissionSerializer(serializers.ModelSerializer):
    """An annotator's work on a region; ``version`` is also sent as the ETag."""

    shapes = ShapeSerializer(many=True, read_only=True)
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    # Null on the empty draft of an untouched region (GET work/ writes no row).
    id = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True, allow_null=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Submission
        fields = [
            "id",
            "region",
            "annotator",
            "status",
            "outcome",
            "cannot_assess_reason",
            "region_label",
            "time_spent_seconds",
            "shown",
            "counts",
            "gold_dice",
            "version",
            "shapes",
            "created_at",
            "updated_at",
            "submitted_at",
        ]
        read_only_fields = fields

    def to_representation(self, submission: Submission) -> dict:
        data = super().to_representation(submission)
        hide_gold_score(data, self.context)
        name_person(data, "annotator", submission.annotator_id, self.context)
        return data


class ShapeInputSerializer(serializers.Serializer):
    label_class = serializers.IntegerField(min_value=1)
    geometry = serializers.JSONField()


class _ClosedSerializer(serializers.Serializer):
    """Refuses keys it does not declare (DRF drops them silently)."""

    def to_internal_value(self, data: object) -> dict:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: ["not a field of this object"] for key in unknown[:10]}
                )
        return super().to_internal_value(data)


class PredictionShownSerializer(_ClosedSerializer):
    model_version = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, allow_null=True, required=False
    )
    shown = serializers.BooleanField()


class ShownSerializer(_ClosedSerializer):
    """What the annotator had on screen while drawing: a fixed record, a few bytes, not a
    store for arbitrary JSON (it is kept with every draft and exported as provenance)."""

    prediction_overlay = serializers.BooleanField(required=False)
    prediction = PredictionShownSerializer(required=False)

    def validate(self, attrs: dict) -> dict:
        import json

        from django.conf import settings

        size = len(json.dumps(attrs, default=str))
        if size > settings.DRAFT_SHOWN_MAX_BYTES:
            raise serializers.ValidationError(
                f"shown is {size} bytes; at most {settings.DRAFT_SHOWN_MAX_BYTES}"
            )
        return attrs


class DraftSerializer(serializers.Serializer):
    """The whole draft: its shapes replace the stored ones (send If-Match: the version)."""

    shapes = ShapeInputSerializer(many=True, max_length=5000)
    region_label = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    time_spent_seconds = serializers.FloatField(min_value=0, max_value=7 * 24 * 3600, default=0)
    shown = ShownSerializer(required=False)


class SubmitSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices, default=Outcome.SHAPES)
    cannot_assess_reason = serializers.CharField(
        max_length=300, required=False, allow_blank=True, default=""
    )


class HistorySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True, allow_null=True)

    def to_representation(self, row: SubmissionHistory) -> dict:
        data = super().to_representation(row)
        name_person(data, "user", row.user_id, self.context)
        return data

    class Meta:
        model = SubmissionHistory
        fields = ["id", "submission", "version", "user", "at", "action", "reason", "snapshot"]
        read_only_fields = fields


class InviteCsvSerializer(serializers.Serializer):
    file = serializers.FileField()


class ExcludeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class ImportAnnotationsSerializer(serializers.Serializer):
    slide = serializers.IntegerField(min_value=1)
    source = serializers.CharField(max_length=200)
    file = serializers.FileField()


class ExportAnnotationsQuerySerializer(serializers.Serializer):
    slide = serializers.IntegerField(min_value=1)
    format = serializers.ChoiceField(choices=["geojson", "asap", "aperio"], default="geojson")
    source = serializers.ChoiceField(choices=["imported", "submitted"], default="submitted")
