"""Which project holds which slide row: each slide row belongs to exactly one project."""

from __future__ import annotations

from django.db import models


class ProjectSlide(models.Model):
    """A slide row held by a project; the one-to-one on ``slide`` makes a row one project's.

    Why one project per row (issue 14, finding 3): a slide row carries state that its project's
    managers act on — the manual mpp every crop, patch and score is cut at, the ingest retry, the
    case key, the data-governance access log (usernames). When two projects shared a row, the
    second project's manager read the first's access log and changed the mpp it works at. So the
    same file registered in two projects gets two rows, each ingested, logged and managed within
    its own project; only the file on disk (and the byte-identical tile cache keyed by its
    checksum) is shared. The alternative, per-project state beside one shared row, would make
    every reader of ``slide.mpp`` (crops, training, scoring, exports) ask which project it reads
    for; a row per project keeps them all unchanged.

    The table is Django's former auto-created through table of ``Project.slides`` (same name and
    columns, so ``project.slides.add()`` keeps working); migration 0010 split rows that projects
    shared before the constraint.
    """

    # The auto-created through table had an integer id; kept so the migration changes no column.
    id = models.AutoField(primary_key=True)
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    slide = models.OneToOneField("slides.Slide", on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "annotation_project_slides"

    def __str__(self) -> str:
        return f"slide {self.slide_id} in project {self.project_id}"
