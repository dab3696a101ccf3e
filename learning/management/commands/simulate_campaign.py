"""manage.py simulate_campaign: a simulated crowd runs whole campaigns through the live system."""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from learning.simulation.campaign import Campaign, SlideInput, ensure_user
from learning.simulation.live import LiveSystem, database_url
from learning.simulation.profiles import SCALES, Scale, make_people, scale_with
from learning.simulation.report import write_report
from learning.simulation.truth import (
    SYNTHETIC_CLASSES,
    from_annotation_file,
    from_mask,
    from_synthetic_geojson,
)

METHOD_TEXT = """\
Each campaign is one project on the same slides with the same seeded crowd; only the selection
strategy differs. A web server (gunicorn) and a Celery worker (all queues) run as subprocesses
on the same database and broker. Students ask `POST /api/projects/{id}/next-region/`, open
`GET /api/assignments/{id}/work/`, save the draft with `PUT` and `If-Match`, and submit with the
new ETag; their polygons are the ground truth clipped to the region, then missed (per-class
sensitivity, more often when small), relabelled (wrong class), outlined with boundary noise
(random buffer, vertex noise, simplify) and joined by spurious blobs (1 - specificity).
Careless students have low sensitivity and high jitter; adversarial ones draw random blobs with
wrong labels. Experts work `GET /api/projects/{id}/adjudication-queue/`: they accept a consensus
within Dice 0.85 of their own outline and redraw the rest (`POST /api/regions/{id}/adjudication/`).

Scores are computed afterwards from the database, on exactly the masks the merge saw
(`merge_inputs`, `rasterize_submission`), against the ground truth rasterised on the same grid at
`target_mpp`. Dice is the foreground Dice micro-averaged over the classes (a pixel is right
only with the right class), pooled over a round's regions.
Majority vote, multi-class STAPLE and the reliability-weighted vote are run through the pure
`annotation.consensus` registry on the same masks (the weighted vote uses the reliability the
platform estimated by the end of that round, so it has seen those regions); "platform answer"
is what the project stored: its configured method's consensus, or the expert's decision.
Estimated reliability is `(sensitivity + specificity) / 2` from
`GET /api/projects/{id}/reliability/`
(STAPLE's running estimate); true quality is each student's pooled Dice against the ground truth.
Model Dice is the mean over the foreground classes of each class's Dice (tissue and glands
weigh alike), measured on tiles of a held-out synthetic slide that is in no project, by loading
each model version's weights in-process (evaluation, not a user action)."""


class Command(BaseCommand):
    help = "Run a campaign with a simulated crowd through the real system and write a report."

    def add_arguments(self, parser: CommandParser) -> None:
        profile = parser.add_mutually_exclusive_group()
        for name in SCALES:
            profile.add_argument(
                f"--{name}",
                dest="profile",
                action="store_const",
                const=name,
                help=f"the {name} profile",
            )
        parser.set_defaults(profile="quick")
        parser.add_argument("--slides", type=int, help="synthetic slides per seed")
        parser.add_argument("--rounds", type=int, help="rounds to annotate (round 0 included)")
        parser.add_argument("--students", type=int)
        parser.add_argument("--k", type=int, help="annotators per region")
        parser.add_argument("--strategy", action="append", help="selection strategy (repeat)")
        parser.add_argument("--seed", type=int, action="append", help="seed (repeat)")
        parser.add_argument(
            "--slide",
            action="append",
            default=[],
            help="a slide file under SLIDE_ROOTS to use instead of synthetic ones (repeat)",
        )
        parser.add_argument(
            "--truth",
            action="append",
            default=[],
            help="its ground truth: a label mask TIFF or a GeoJSON/ASAP/Aperio XML file (repeat)",
        )
        parser.add_argument("--slide-mpp", type=float, help="mpp of the --slide files")
        parser.add_argument("--out", help="report directory (default var/reports/<timestamp>)")
        parser.add_argument(
            "--server-url", help="use this running server (and its worker) instead of starting them"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scale = scale_with(
            SCALES[options["profile"]],
            slides=options["slides"],
            rounds=options["rounds"],
            students=options["students"],
            k=options["k"],
            strategies=options["strategy"],
            seeds=options["seed"],
            slide_mpp=options["slide_mpp"],
        )
        if len(options["slide"]) != len(options["truth"]):
            raise CommandError("give one --truth per --slide")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        out = Path(options["out"] or settings.BASE_DIR / "var" / "reports" / stamp)
        out.mkdir(parents=True, exist_ok=True)
        started = dt.datetime.now(dt.UTC)
        results: dict[str, Any] = {
            "command": " ".join(["manage.py", "simulate_campaign", *sys.argv[2:]]),
            "started_at": started.isoformat(timespec="seconds"),
            "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()})",
            "scale": scale.as_dict(),
            "method": METHOD_TEXT,
            "campaigns": [],
            "generator": {},
        }
        system_cm = (
            _External(options["server_url"])
            if options["server_url"]
            else LiveSystem(
                database_url(connection.settings_dict), out / "logs", scale.learning_env
            )
        )
        with system_cm as system:
            for seed in scale.seeds:
                slides, classes, held_out = self._slides(scale, seed, options, results)
                students, experts = make_people(classes, scale, seed, prefix=f"sim{seed}")
                passwords = {p.username: secrets.token_urlsafe(12) for p in students + experts}
                passwords["sim-manager"] = secrets.token_urlsafe(12)
                ensure_user("sim-manager", passwords["sim-manager"], staff=True)
                for person in students + experts:
                    ensure_user(person.username, passwords[person.username])
                results.setdefault("people", {})[f"seed {seed}"] = [
                    p.as_dict() for p in students + experts
                ]
                for strategy in scale.strategies:
                    self.stdout.write(f"campaign: strategy {strategy}, seed {seed} ...")
                    t0 = time.monotonic()
                    campaign = Campaign(
                        system=system,
                        scale=scale,
                        strategy=strategy,
                        seed=seed,
                        slides=slides,
                        classes=classes,
                        students=students,
                        experts=experts,
                        passwords=passwords,
                        slug=f"sim-{stamp}-{strategy}-s{seed}".lower(),
                    )
                    result = campaign.run("sim-manager")
                    curve = self._curve(campaign, held_out, classes)
                    record = asdict(result)
                    record["pooled"] = campaign.pooled
                    record["curve"] = curve
                    record["seconds"] = time.monotonic() - t0
                    results["campaigns"].append(record)
                    self.stdout.write(
                        f"  {len(result.rounds)} rounds in {record['seconds']:.0f}s; "
                        f"dice {record['pooled']}"
                    )
        results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        report = write_report(results, out)
        self.stdout.write(f"report: {report}")
        head = results["headline"]
        self.stdout.write(
            f"consensus Dice {head['consensus_dice']} vs median student "
            f"{head['median_student_dice']}; reliability Spearman {head['spearman']}; "
            f"area share {head['area_share']}"
        )

    def _slides(
        self, scale: Scale, seed: int, options: dict[str, Any], results: dict[str, Any]
    ) -> tuple[list[SlideInput], list[str], Any]:
        """Synthetic slides of this seed (written once, same spec same bytes), or the given ones."""
        if options["slide"]:
            slides = []
            for slide_path, truth_path in zip(options["slide"], options["truth"], strict=True):
                if truth_path.lower().endswith((".tif", ".tiff")):
                    truth = from_mask(
                        Path(truth_path), downsample=scale.target_mpp / scale.slide_mpp
                    )
                else:
                    truth = from_annotation_file(Path(truth_path))
                slides.append(SlideInput(Path(slide_path), truth))
            classes = list(dict.fromkeys(c for s in slides for c in s.truth.classes))
            for s in slides:
                s.truth.classes[:] = classes
            results["generator"][f"seed {seed}"] = {
                "slides": options["slide"],
                "truth": options["truth"],
            }
            return slides, classes, None
        from learning.simulation.model_eval import held_out_tiles
        from slides.synthetic import SyntheticSpec, write_synthetic_slide

        root = _slide_root() / "simulation" / f"seed{seed}"
        slides = []
        specs = {}
        for i in range(scale.slides + 1):
            spec = SyntheticSpec(
                scale.slide_size, scale.slide_size, seed=seed * 100 + i, mpp=scale.slide_mpp
            )
            name = f"sim-{scale.slide_size}-{spec.seed}"
            specs[name] = asdict(spec)
            if i == scale.slides:  # the held-out slide: in no project
                held_name, held_spec = name, spec
                continue
            files = (
                write_synthetic_slide(root, name, spec)
                if not (root / f"{name}.geojson").exists()
                else None
            )
            geojson = files.geojson if files else root / f"{name}.geojson"
            slides.append(SlideInput(root / f"{name}.tiff", from_synthetic_geojson(geojson)))
        held_files = root / f"{held_name}.geojson"
        if not held_files.exists():
            write_synthetic_slide(root, held_name, held_spec)
        downsample = round(scale.target_mpp / scale.slide_mpp)
        held = held_out_tiles(
            held_spec,
            from_synthetic_geojson(held_files),
            downsample,
            scale.region_size,
            scale.heldout_tiles,
            seed,
        )
        results["generator"][f"seed {seed}"] = {"slides": specs, "held_out": held_name}
        return slides, list(SYNTHETIC_CLASSES), held

    def _curve(self, campaign: Campaign, held_out: Any, classes: list[str]) -> list[dict[str, Any]]:
        """Model Dice on held-out truth after each round that registered a model version."""
        from annotation.models import LabelClass
        from learning.simulation.model_eval import model_dice

        curve = []
        index = {
            lc.pk: (0 if lc.is_background else classes.index(lc.name) + 1)
            for lc in LabelClass.objects.filter(project_id=campaign.result.project_id)
            if lc.is_background or lc.name in classes
        }
        for record in campaign.result.rounds:
            point = {"round": record["round"], "area_mm2": record.get("labelled_area_mm2", 0.0)}
            version_id = record.get("model_version")
            if version_id and held_out is not None:
                try:
                    version = campaign.driver.model_version(int(version_id))
                    weights = Path(settings.MEDIA_ROOT) / version["weights_path"]
                    class_map = [index.get(cid, 0) for cid in version["class_ids"]]
                    point["model_dice"] = model_dice(weights, held_out, class_map)
                    point["model_version"] = version_id
                except Exception as exc:  # noqa: BLE001 - a figure missing is reported, not fatal
                    campaign.result.notes.append(f"model version {version_id}: {exc}")
            record["model_dice"] = point.get("model_dice")
            curve.append(point)
        return curve


def _slide_root() -> Path:
    """A slide root under this installation's var directory when there is one (never a shared
    data directory that happens to come first), else the first root."""
    var = Path(settings.VAR_DIR).resolve()
    for root in settings.SLIDE_ROOTS:
        if Path(root).resolve().is_relative_to(var):
            return Path(root)
    return Path(settings.SLIDE_ROOTS[0])


class _External:
    """A server (and worker) that is already running: nothing to start or stop."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def check(self) -> None:
        return None

    def __enter__(self) -> _External:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
