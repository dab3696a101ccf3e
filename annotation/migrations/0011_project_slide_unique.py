"""Each slide row belongs to one project, part 2: the database refuses a second project."""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("annotation", "0010_project_slide_one_project")]

    operations = [
        # (project, slide) is implied once slide alone is unique.
        migrations.AlterUniqueTogether(name="projectslide", unique_together=set()),
        migrations.AlterField(
            model_name="projectslide",
            name="slide",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="slides.slide"
            ),
        ),
    ]
