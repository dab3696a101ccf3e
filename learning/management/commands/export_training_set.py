"""Build a research export from the command line, in this process (no worker needed)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import LabelClass, Project
from learning.exports.config import ConfigError
from learning.exports.services import export_build, export_config_check
from learning.models import ExportStatus, TrainingExport


class Command(BaseCommand):
    help = "Export a project's accepted answers as a versioned training set (zip)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--classes", default="", help="class names, comma-separated (all)")
        parser.add_argument("--labels", choices=["consensus", "adjudicated"], default="consensus")
        parser.add_argument("--min-agreement", type=float, default=0.0, help="mean Dice, 0-1")
        parser.add_argument("--mpp", type=float, default=None, help="default: target_mpp")
        parser.add_argument("--patch-size", type=int, default=256)
        parser.add_argument("--stride", type=int, default=None, help="default: patch size")
        parser.add_argument("--split-by", choices=["slide", "case"], default="slide")
        parser.add_argument("--fractions", default="0.7,0.15,0.15", help="train,val,test")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--format", choices=["png", "jpeg"], default="png")
        parser.add_argument("--out", default="", help="also copy the archive to this path")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"no project with slug {options['project']!r}")
        names = [n.strip() for n in options["classes"].split(",") if n.strip()]
        classes = {c.name: c.pk for c in LabelClass.objects.filter(project=project)}
        missing = sorted(set(names) - set(classes))
        if missing:
            raise CommandError(f"unknown classes {missing}; the project has {sorted(classes)}")
        data = {
            "class_ids": [classes[n] for n in names],
            "labels": options["labels"],
            "min_agreement": options["min_agreement"],
            "mpp": options["mpp"],
            "patch_size": options["patch_size"],
            "stride": options["stride"],
            "split_by": options["split_by"],
            "fractions": options["fractions"].split(","),
            "seed": options["seed"],
            "image_format": options["format"],
        }
        try:
            config = export_config_check(project=project, data=data)
        except ConfigError as error:
            raise CommandError(str(error)) from None
        # Built here rather than queued: the command is for scripts and machines without a worker.
        export = TrainingExport.objects.create(project=project, config=config.as_dict())
        export = export_build(export_id=export.pk)
        if export is None or export.status != ExportStatus.READY:
            reason = export.failed_reason if export is not None else "gone"
            raise CommandError(f"export failed: {reason}")
        path = Path(settings.MEDIA_ROOT) / export.file_path
        if options["out"]:
            shutil.copyfile(path, options["out"])
            path = Path(options["out"])
        patches = sum(split["patches"] for split in export.counts.values())
        self.stdout.write(
            f"export {export.pk}: {patches} patches, {export.file_size} bytes\n"
            f"hash {export.export_hash}\n{path}"
        )
