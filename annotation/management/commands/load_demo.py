"""manage.py load_demo: demo users, a project with classes, a real and a synthetic slide, round 0
seeded on tissue; prints the logins."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from annotation.models import LabelClass, Membership, Project, Region, Role
from annotation.services import project_add_slide_by_path
from annotation.services.regions import regions_seed
from slides.models import SlideStatus

DEMO_USERS = [
    ("manager", Role.MANAGER, True),
    ("expert", Role.EXPERT, False),
    ("student1", Role.ANNOTATOR, False),
    ("student2", Role.ANNOTATOR, False),
    ("student3", Role.ANNOTATOR, False),
    ("researcher", Role.RESEARCHER, False),
]
REPO = Path(__file__).resolve().parents[3]


class Command(BaseCommand):
    help = "Create the demo campaign (idempotent) and print its URL logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--synthetic-size",
            type=int,
            default=8192,
            help="Side of the synthetic slide in pixels (default 8192).",
        )
        parser.add_argument(
            "--with-shared-data",
            default="",
            help="Also import the slides of this data directory (../shared/data).",
        )

    def handle(self, *args: object, **options: object) -> None:
        logins = self._users()
        project = self._project(logins)
        slides_root = settings.SLIDE_ROOTS[0]
        slides_root.mkdir(parents=True, exist_ok=True)
        real = slides_root / "cmu-1-small-region.svs"
        if not real.exists():
            shutil.copyfile(REPO / "demo" / "slides" / "cmu-1-small-region.svs", real)
        self._import(project, real)
        self._import(project, self._synthetic(slides_root, int(options["synthetic_size"])))
        shared = str(options["with_shared_data"] or "")
        if shared and (Path(shared) / "slides").is_dir():
            for path in sorted((Path(shared) / "slides").glob("*")):
                # CMU-1-Small-Region is already in from demo/slides; skip the shared copy.
                if path.name == real.name:
                    continue
                if path.is_file() and path.suffix in {".svs", ".ndpi", ".dcm"}:
                    self._import(project, path, quiet_refusal=True)
        self._classes(project)
        self._seed_round_zero(project)
        self.stdout.write("\nDemo logins (also in var/demo-logins.txt):")
        for username, password in logins.items():
            self.stdout.write(f"  {username:<11} {password}")

    def _users(self) -> dict[str, str]:
        """Create the demo users once with random passwords, kept 0600 under var/."""
        store = settings.VAR_DIR / "demo-logins.txt"
        known = {}
        if store.exists():
            known = dict(
                line.split(" ", 1) for line in store.read_text().splitlines() if " " in line
            )
        User = get_user_model()
        for username, _role, staff in DEMO_USERS:
            if username in known and User.objects.filter(username=username).exists():
                continue
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = staff
            user.email = f"{username}@example.org"
            user.save()
            known[username] = password
        store.write_text("".join(f"{u} {p}\n" for u, p in known.items()))
        store.chmod(0o600)
        return known

    @transaction.atomic
    def _project(self, logins: dict[str, str]) -> Project:
        project, _ = Project.objects.get_or_create(
            slug="demo",
            defaults={
                "name": "Demo campaign",
                "target_mpp": 1.0,
                "region_size": 256,
                "round_size": 8,
                "strategy": "bald",
                "description": "A real Aperio slide (CMU-1-Small-Region, CC0) and a "
                "synthetic H&E-like slide with ground truth.",
            },
        )
        User = get_user_model()
        for username, role, _staff in DEMO_USERS:
            Membership.objects.update_or_create(
                project=project,
                user=User.objects.get(username=username),
                defaults={"role": role},
            )
        return project

    def _classes(self, project: Project) -> None:
        """The synthetic slide's classes (glands and nuclei on tissue), once."""
        for order, (name, color, background) in enumerate(
            [("none", "#ffffff", True), ("gland", "#e65028", False), ("nucleus", "#283cdc", False)]
        ):
            LabelClass.objects.get_or_create(
                project=project,
                name=name,
                defaults={"color": color, "order": order, "is_background": background},
            )

    def _seed_round_zero(self, project: Project, wait_seconds: float = 180) -> None:
        """Round 0: regions on the tissue of every ingested slide, once (the worker ingests the
        slides, so wait for it, within a bound)."""
        if Region.objects.filter(project=project).exists():
            return
        deadline = time.monotonic() + wait_seconds
        while project.slides.filter(status=SlideStatus.PENDING).exists():
            if time.monotonic() > deadline:
                self.stderr.write("slides still ingesting: seed regions later from the set-up page")
                return
            time.sleep(1)
        regions = regions_seed(project=project, per_slide=4, seed=1, created_by=None)
        self.stdout.write(f"round 0: {len(regions)} regions seeded on tissue")

    def _synthetic(self, root: Path, size: int) -> Path:
        from slides.synthetic import SyntheticSpec, write_synthetic_slide

        name = f"synthetic-{size}-seed1"
        existing = root / "synthetic" / f"{name}.tiff"
        if existing.exists():
            return existing
        self.stdout.write(f"writing a {size}x{size} synthetic slide ...")
        files = write_synthetic_slide(root / "synthetic", name, SyntheticSpec(size, size, seed=1))
        return files.slide

    def _import(self, project: Project, path: Path, quiet_refusal: bool = False) -> None:
        try:
            slide, created = project_add_slide_by_path(
                project=project, path=str(path), created_by=None
            )
        except ValueError as exc:
            if not quiet_refusal:
                raise
            self.stderr.write(f"skipped {path}: {exc}")
            return
        self.stdout.write(f"{'imported' if created else 'present'}: {slide.name} ({slide.status})")
