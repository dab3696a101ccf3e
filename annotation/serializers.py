"""DRF serializers for projects, members and slide import."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from annotation.models import Membership, Project, Role

User = get_user_model()


class ProjectSerializer(serializers.ModelSerializer):
    """A project and the caller's role in it."""

    my_role = serializers.SerializerMethodField()
    slide_count = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "slug", "description", "target_mpp", "my_role", "slide_count",
                  "created_at"]
        read_only_fields = ["id", "my_role", "slide_count", "created_at"]
        extra_kwargs = {"target_mpp": {"min_value": 0.01, "max_value": 100}}

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
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class RegisterSlideSerializer(serializers.Serializer):
    """A server path under SLIDE_ROOTS to register in the project."""

    path = serializers.CharField(max_length=4096)
    case_key = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class UploadSlideSerializer(serializers.Serializer):
    """A slide file, or one zip holding a multi-file slide (MIRAX, VMS)."""

    file = serializers.FileField()
    case_key = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
