"""manage.py import_slides PATH... --project P [--case-key-from REGEX] [--wait]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from annotation.services import project_add_slide_by_path
from slides.paths import PathNotAllowed

SLIDE_SUFFIXES = {
    ".svs",
    ".tif",
    ".tiff",
    ".ndpi",
    ".vms",
    ".vmu",
    ".scn",
    ".mrxs",
    ".svslide",
    ".bif",
    ".dcm",
}


class Command(BaseCommand):
    help = (
        "Register slide files (or every slide file in given directories) under SLIDE_ROOTS in a "
        "project; ingest runs in the Celery worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="Slide files or directories to scan.")
        parser.add_argument("--project", required=True, help="Project slug or id.")
        parser.add_argument(
            "--case-key-from",
            default=None,
            help="Regex applied to each file name; its first group (or match) is the case key.",
        )

    def handle(self, *args: object, **options: object) -> None:
        project = self._project(str(options["project"]))
        files: list[Path] = []
        for raw in options["paths"]:  # type: ignore[union-attr]
            path = Path(raw).expanduser().absolute()
            if path.is_dir():
                files.extend(
                    sorted(p for p in path.rglob("*") if p.suffix.lower() in SLIDE_SUFFIXES)
                )
            else:
                files.append(path)
        if not files:
            raise CommandError("no slide files found")
        failures = 0
        for path in files:
            try:
                slide, created = project_add_slide_by_path(
                    project=project,
                    path=str(path),
                    created_by=None,
                    case_key_pattern=options["case_key_from"],  # type: ignore[arg-type]
                )
            except PathNotAllowed as exc:
                failures += 1
                self.stderr.write(f"refused: {exc}")
                continue
            state = "registered" if created else "already registered"
            key = f" case={slide.case_key}" if slide.case_key else ""
            self.stdout.write(f"{state}: #{slide.pk} {slide.name}{key}")
        if failures:
            raise CommandError(f"{failures} path(s) refused")

    @staticmethod
    def _project(ref: str) -> Project:
        query = Project.objects.filter(slug=ref)
        if ref.isdigit():
            query = query | Project.objects.filter(pk=int(ref))
        project = query.first()
        if project is None:
            raise CommandError(f"no project {ref!r}")
        return project
