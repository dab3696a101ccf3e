"""Projects and their members' roles."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Role(models.TextChoices):
    """A member's role in one project. The value "manager" is also matched by name in slides/."""

    MANAGER = "manager", "Project manager"
    EXPERT = "expert", "Expert (pathologist)"
    ANNOTATOR = "annotator", "Annotator (student)"
    RESEARCHER = "researcher", "Researcher"


class Project(models.Model):
    """An annotation campaign over a set of slides at one working resolution."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    target_mpp = models.FloatField(
        validators=[MinValueValidator(0.01)],
        help_text="Working resolution in micrometres per pixel.",
    )
    slides = models.ManyToManyField("slides.Slide", related_name="projects", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in a project; one row per (project, user)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]
        ordering = ["project_id", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"
