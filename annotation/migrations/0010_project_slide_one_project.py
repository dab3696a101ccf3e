"""Each slide row belongs to one project (issue 14, finding 3; see ProjectSlide), part 1.

The former auto-created through table of ``Project.slides`` becomes the ``ProjectSlide`` model
(same table and columns: state only), and rows that several projects shared are split into one
row per project. Migration 0011 then makes ``slide`` unique; it is a migration of its own because
PostgreSQL cannot alter a table with deferred foreign-key checks pending from this one's writes.
"""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


def split_shared_slides(apps, schema_editor) -> None:  # noqa: ANN001 - Django's signature
    """Give every project but the first (lowest link id) its own copy of a shared slide row.

    The copy keeps the file's facts (ingest results, mpp, thumbnail and mask files, which stay
    read-only on disk); the project's regions, imported shapes and candidate tiles move to it; the
    access log is split by membership: a copy gets the rows of its project's members, and the
    original loses the rows of users who belong only to projects that moved away.
    """
    ProjectSlide = apps.get_model("annotation", "ProjectSlide")
    Slide = apps.get_model("slides", "Slide")
    SlideAccess = apps.get_model("slides", "SlideAccess")
    Membership = apps.get_model("annotation", "Membership")
    moved_models = [
        apps.get_model("annotation", "Region"),
        apps.get_model("annotation", "SlideAnnotation"),
        apps.get_model("learning", "CandidateTile"),
    ]
    shared = (
        ProjectSlide.objects.values("slide_id")
        .annotate(n=models.Count("id"))
        .filter(n__gt=1)
        .values_list("slide_id", flat=True)
    )
    for slide_id in list(shared):
        links = list(ProjectSlide.objects.filter(slide_id=slide_id).order_by("id"))
        keeper = links[0].project_id
        keeper_members = set(
            Membership.objects.filter(project_id=keeper).values_list("user_id", flat=True)
        )
        moved_members: set[int] = set()
        original = Slide.objects.get(pk=slide_id)
        for link in links[1:]:
            fields = {
                f.attname: getattr(original, f.attname)
                for f in Slide._meta.concrete_fields
                if f.attname != "id"
            }
            copy = Slide.objects.create(**fields)
            ProjectSlide.objects.filter(pk=link.pk).update(slide_id=copy.pk)
            for model in moved_models:
                model.objects.filter(project_id=link.project_id, slide_id=slide_id).update(
                    slide_id=copy.pk
                )
            members = set(
                Membership.objects.filter(project_id=link.project_id).values_list(
                    "user_id", flat=True
                )
            )
            moved_members |= members
            for access in SlideAccess.objects.filter(slide_id=slide_id, user_id__in=members):
                SlideAccess.objects.create(user_id=access.user_id, slide_id=copy.pk, day=access.day)
        SlideAccess.objects.filter(
            slide_id=slide_id, user_id__in=moved_members - keeper_members
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0009_login_counter"),
        ("slides", "0002_slide_path_per_project"),
        # Candidate tiles name a project and a slide; the split moves them with their project.
        ("learning", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProjectSlide",
                    fields=[
                        ("id", models.AutoField(primary_key=True, serialize=False)),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="annotation.project",
                            ),
                        ),
                        (
                            "slide",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="slides.slide",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "annotation_project_slides",
                        # What the auto-created table already has in the database.
                        "unique_together": {("project", "slide")},
                    },
                ),
                migrations.AlterField(
                    model_name="project",
                    name="slides",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="projects",
                        through="annotation.ProjectSlide",
                        to="slides.slide",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(split_shared_slides, migrations.RunPython.noop),
    ]
