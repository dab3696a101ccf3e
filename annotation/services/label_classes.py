"""The cap on a project's label classes, checked on every path that creates them.

A merge, a training run and an export each allocate per class; an import that names thousands
of classes would make every later merge of the project slow and memory-hungry (audit finding
6: 3,000 classes from one GeoJSON file). API, set-up page and import all pass through here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from annotation.models import LabelClass, Project


class LabelClassLimit(ValueError):
    """Creating these classes would take the project past ``LABEL_CLASSES_MAX``."""


def label_classes_reserve(*, project: Project, adding: int) -> None:
    """Refuse unless ``adding`` more classes fit under the cap; call inside the transaction
    that creates them. The project row is locked so two concurrent creations cannot both take
    the last place (on SQLite the write transaction serialises them anyway)."""
    if adding <= 0:
        return
    assert transaction.get_connection().in_atomic_block, "reserve inside the creating transaction"
    Project.objects.select_for_update().filter(pk=project.pk).first()
    limit = settings.LABEL_CLASSES_MAX
    present = LabelClass.objects.filter(project=project).count()
    if present + adding > limit:
        raise LabelClassLimit(
            f"a project has at most {limit} label classes (LABEL_CLASSES_MAX); this one has "
            f"{present}, and this would add {adding}"
        )
