"""Projects (campaigns), their members' roles, label classes and guidelines."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from annotation.consensus import method_names as consensus_method_names

# The learning app's registered selection strategies (annotation may not import learning; a test
# keeps the two lists equal).
SELECTION_STRATEGIES = ("bald", "diversity", "entropy", "random")


# Documented bounds of settings with no natural limit (the others sit beside their fields).
ASSIGNMENT_EXPIRY_MIN = dt.timedelta(minutes=1)
ASSIGNMENT_EXPIRY_MAX = dt.timedelta(days=365)
ORDER_MAX = 10_000  # display order of label classes and guideline images


class Role(models.TextChoices):
    """A member's role in one project. The value "manager" is also matched by name in slides/."""

    MANAGER = "manager", "Project manager"
    EXPERT = "expert", "Expert (pathologist)"
    ANNOTATOR = "annotator", "Annotator (student)"
    RESEARCHER = "researcher", "Researcher"


class CampaignState(models.TextChoices):
    OPEN = "open", "Open"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"


class Project(models.Model):
    """An annotation campaign over a set of slides at one working resolution."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    target_mpp = models.FloatField(
        validators=[MinValueValidator(0.01), MaxValueValidator(100)],
        help_text="Working resolution in micrometres per pixel.",
    )
    # Each slide row belongs to one project (ProjectSlide says why); the same file registered
    # in two projects is two rows.
    slides = models.ManyToManyField(
        "slides.Slide", related_name="projects", blank=True, through="annotation.ProjectSlide"
    )

    # Campaign set-up (defaults are stated in the UI and the API schema).
    state = models.CharField(
        max_length=8, choices=CampaignState.choices, default=CampaignState.OPEN
    )
    guidelines = models.TextField(blank=True, default="", help_text="Shown to annotators.")
    redundancy_k = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Annotators per region.",
    )
    redundancy_k_max = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="At most this many annotators when agreement falls short.",
    )
    region_size = models.PositiveIntegerField(
        default=512,
        validators=[MinValueValidator(64), MaxValueValidator(8192)],
        help_text="Region side in pixels at the working resolution.",
    )
    assignment_expiry = models.DurationField(
        default=dt.timedelta(hours=48),
        # A bound above: a deadline past year 9999 made every next-region call a 500.
        validators=[
            MinValueValidator(ASSIGNMENT_EXPIRY_MIN),
            MaxValueValidator(ASSIGNMENT_EXPIRY_MAX),
        ],
        help_text="An unsubmitted assignment returns to the pool after this (1 min to 365 days).",
    )
    round_size = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Regions proposed per round.",
    )
    round_quota = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a round's regions accepted before training starts.",
    )
    consensus_method = models.CharField(
        max_length=40,
        default="staple",
        choices=[(n, n) for n in consensus_method_names()],
        help_text="How annotators' masks are merged (STAPLE starts from their reliability).",
    )
    contested_share = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A pixel is contested when its majority class has less than this vote share.",
    )
    accept_dice = models.FloatField(
        default=0.8,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Accept a region at this mean pairwise Dice or more (with few contested pixels).",
    )
    max_contested_fraction = models.FloatField(
        default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Accept only when at most this share of the region's pixels is contested.",
    )
    escalate_dice = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Below acceptance but at this Dice or more: ask more annotators (up to k_max); "
        "below it, an expert adjudicates.",
    )
    polygon_annotations = models.BooleanField(default=True, help_text="Annotators draw polygons.")
    region_labels = models.BooleanField(
        default=False, help_text="Annotators also give one class for the whole region."
    )
    gold_mix_rate = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of a student's regions drawn from gold-standard regions, unannounced.",
    )
    qualification_gold_regions = models.PositiveSmallIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Gold regions a student must pass before real work (0: none; at most 100).",
    )
    qualification_min_dice = models.FloatField(
        default=0.7,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Mean Dice against the experts' outlines needed on those gold regions.",
    )
    show_annotator_names = models.BooleanField(
        default=False,
        help_text="Experts see annotators' names when adjudicating (hidden by default).",
    )
    show_prediction_to_annotators = models.BooleanField(
        default=False,
        help_text="Annotators see the model's prediction overlay (experts always do).",
    )
    strategy = models.CharField(
        max_length=40,
        default="bald",
        choices=[(n, n) for n in SELECTION_STRATEGIES],
        help_text="How the model's scores choose the next round's regions.",
    )
    auto_rounds = models.BooleanField(
        default=True,
        help_text="Start training by itself when the round quota of accepted regions is met.",
    )
    license_text = models.TextField(blank=True, default="")
    citation = models.TextField(blank=True, default="")
    pseudonymize_slides = models.BooleanField(
        default=True,
        help_text="Research exports name slides (and cases) by pseudonyms, not file names.",
    )

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
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
    excluded = models.BooleanField(
        default=False, help_text="Excluded annotators get no work and their labels stop counting."
    )
    excluded_reason = models.TextField(blank=True, default="")
    qualified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]
        ordering = ["project_id", "user_id"]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"


class LabelClass(models.Model):
    """One class annotators can draw or pick; one per project may be the background/none class."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    color = models.CharField(
        max_length=7,
        default="#ff0000",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "use #rrggbb")],
    )
    order = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(ORDER_MAX)]
    )
    is_background = models.BooleanField(default=False)
    shortcut = models.CharField(
        max_length=1, blank=True, default="", help_text="Keyboard key that picks this class."
    )

    class Meta:
        ordering = ["project_id", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_class_name"),
            models.UniqueConstraint(
                fields=["project"],
                condition=models.Q(is_background=True),
                name="one_background_class",
            ),
        ]

    def __str__(self) -> str:
        return self.name


def _guideline_upload(instance: GuidelineImage, filename: str) -> str:
    return f"guidelines/{instance.project_id}/{filename}"


class GuidelineImage(models.Model):
    """An example image shown with the guidelines."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guideline_images")
    image = models.ImageField(upload_to=_guideline_upload)
    caption = models.CharField(max_length=300, blank=True, default="")
    order = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(ORDER_MAX)]
    )

    class Meta:
        ordering = ["project_id", "order", "id"]


# The campaign settings a manager edits, shared by the set-up form and the project API so a
# new setting cannot reach one and not the other.
CAMPAIGN_SETTINGS = (
    "state",
    "guidelines",
    "redundancy_k",
    "redundancy_k_max",
    "region_size",
    "assignment_expiry",
    "round_size",
    "round_quota",
    "polygon_annotations",
    "region_labels",
    "gold_mix_rate",
    "qualification_gold_regions",
    "qualification_min_dice",
    "consensus_method",
    "contested_share",
    "accept_dice",
    "max_contested_fraction",
    "escalate_dice",
    "strategy",
    "auto_rounds",
    "show_prediction_to_annotators",
    "show_annotator_names",
    "license_text",
    "citation",
    "pseudonymize_slides",
)
