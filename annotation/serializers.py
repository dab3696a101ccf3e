"""DRF serializers for projects, members and slide import."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from annotation.models import Membership, Project, Role
from annotation.models.projects import CAMPAIGN_SETTINGS

User = get_user_model()


class ProjectSerializer(serializers.ModelSerializer):
    """A project and the caller's role in it."""

    my_role = serializers.SerializerMethodField()
    slide_count = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "target_mpp",
            "my_role",
            "slide_count",
            *CAMPAIGN_SETTINGS,
            "created_at",
        ]
        read_only_fields = ["id", "my_role", "slide_count", "created_at"]
        extra_kwargs = {
            "target_mpp": {"min_value": 0.01, "max_value": 100},
            "round_quota": {"min_value": 0.0, "max_value": 1.0},
            "gold_mix_rate": {"min_value": 0.0, "max_value": 1.0},
            "qualification_min_dice": {"min_value": 0.0, "max_value": 1.0},
        }

    def validate(self, attrs: dict) -> dict:
        k = attrs.get("redundancy_k", getattr(self.instance, "redundancy_k", 3))
        k_max = attrs.get("redundancy_k_max", getattr(self.instance, "redundancy_k_max", 5))
        if k > k_max:
            raise serializers.ValidationError({"redundancy_k_max": "must be at least redundancy_k"})
        return attrs

    def get_my_role(self, project: Project) -> str | None:
        request = self.context.get("request")
        if request is None:
            return None
        return next(
            (m.role for m in project.memberships.all() if m.user_id == request.user.pk), None
        )

    def get_slide_count(self, project: Project) -> int:
        return project.slides.count()


class MembershipSerializer(serializers.ModelSerializer):
    """A member: write ``username`` and ``role``; read both plus ids."""

    username = serializers.SlugRelatedField(
        source="user", slug_field="username", queryset=User.objects.all()
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = [
            "id",
            "username",
            "role",
            "excluded",
            "excluded_reason",
            "qualified_at",
            "created_at",
        ]
        read_only_fields = ["id", "excluded", "excluded_reason", "qualified_at", "created_at"]

    def to_representation(self, membership: Membership) -> dict:
        data = super().to_representation(membership)
        # Why a peer was excluded is between them and the managers.
        reader = self.context.get("request").user if self.context.get("request") else None
        if not self.context.get("reader_is_manager") and membership.user_id != getattr(
            reader, "pk", None
        ):
            data["excluded_reason"] = ""
        return data


class RegisterSlideSerializer(serializers.Serializer):
    """A server path under SLIDE_ROOTS to register in the project."""

    path = serializers.CharField(max_length=4096)
    case_key = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class UploadSlideSerializer(serializers.Serializer):
    """A slide file, or one zip holding a multi-file slide (MIRAX, VMS)."""

    file = serializers.FileField()
    case_key = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
