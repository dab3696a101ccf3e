"""Candidate tiles over the projects' tissue, their scores per model version, and what the
selection made of them (proposals and routing decisions)."""

from __future__ import annotations

from django.db import models


class CandidateTile(models.Model):
    """A square tile of a slide's tissue (level-0 px), the unit the model scores.

    ``region`` is set for the tile that stands for an existing region (so its uncertainty can
    route it back to annotators); grid tiles have none.
    """

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="candidate_tiles"
    )
    slide = models.ForeignKey("slides.Slide", on_delete=models.CASCADE, related_name="+")
    x = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    tissue_fraction = models.FloatField(default=1.0)
    region = models.ForeignKey(
        "annotation.Region", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        ordering = ["project_id", "slide_id", "y", "x", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "slide", "x", "y", "width", "height"],
                name="one_tile_per_box",
            )
        ]

    def __str__(self) -> str:
        return f"tile {self.pk} ({self.x}, {self.y}) on slide {self.slide_id}"

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.x + self.width, self.y + self.height)


class CandidateScore(models.Model):
    """A tile's scores under one model version: scalars for selection, small arrays for maps.

    ``embedding`` is float16 bytes (E,), ``uncertainty_map`` / ``prediction_map`` are uint8
    bytes (``map_size`` x ``map_size``): pixel entropy scaled to 0..255 of log(K), and the
    predicted class index. ``class_pixels`` counts predicted pixels per class index.
    """

    tile = models.ForeignKey(CandidateTile, on_delete=models.CASCADE, related_name="scores")
    model_version = models.ForeignKey(
        "learning.ModelVersion", on_delete=models.CASCADE, related_name="scores"
    )
    entropy = models.FloatField()
    bald = models.FloatField()
    class_pixels = models.JSONField(default=list)
    embedding = models.BinaryField()
    map_size = models.PositiveSmallIntegerField()
    uncertainty_map = models.BinaryField()
    prediction_map = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tile", "model_version"], name="one_score_per_version")
        ]
        indexes = [models.Index(fields=["model_version", "tile"])]


class Proposal(models.Model):
    """A region of round ``round`` proposed by the strategy from a tile's score."""

    round = models.ForeignKey("learning.Round", on_delete=models.CASCADE, related_name="proposals")
    model_version = models.ForeignKey(
        "learning.ModelVersion", on_delete=models.CASCADE, related_name="proposals"
    )
    tile = models.ForeignKey(CandidateTile, on_delete=models.CASCADE, related_name="+")
    region = models.OneToOneField(
        "annotation.Region", on_delete=models.CASCADE, related_name="proposal"
    )
    strategy = models.CharField(max_length=40)
    score = models.FloatField()
    rank = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["round_id", "rank"]


class RoutingRecord(models.Model):
    """A contested region the model also found uncertain, sent back for more annotators or to
    an expert when a round was proposed."""

    round = models.ForeignKey("learning.Round", on_delete=models.CASCADE, related_name="routing")
    model_version = models.ForeignKey(
        "learning.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    region = models.ForeignKey("annotation.Region", on_delete=models.CASCADE, related_name="+")
    route = models.CharField(max_length=20)
    score = models.FloatField()
    contested = models.FloatField()
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["round_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["round", "region"], name="one_route_per_round")
        ]
