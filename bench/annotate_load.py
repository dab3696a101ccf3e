"""Class-sized load: 50 annotators fetch their next region, load its tiles and save a polygon
every 5 s, against gunicorn (2 workers x 4 threads) with a Celery worker running.

    python bench/annotate_load.py [--annotators 50] [--duration 300] [--interval 5]
    python bench/annotate_load.py --training-comparison [--duration 120]

The second form runs two phases of ``--duration`` each with merges queued every
``--merge-interval`` s beside the annotators: once alone, once with a training run at the lowest
CPU priority (``nice -n 19``: the pure learning loop, ``learning.training.train`` on a synthetic
patch cache, in a subprocess) on the same machine. Writes
bench/results/annotate-load-training-<date>.json.

Prints p50/p95 of save and of next-region, the error count, and acked saves against stored
versions (every acknowledged save bumps its draft's version by exactly one, so the two must be
equal: a lost update would show as fewer stored versions than acks). Writes
bench/results/annotate-load-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.tiles import Server  # noqa: E402  (same gunicorn set-up as the tile benchmark)

VAR = REPO / "var" / "bench-load"
SHARED = Path(os.environ.get("HISTOCROWD_TEST_DATA", REPO.parent / "shared" / "data"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HISTOCROWD_VAR_DIR=str(VAR),
        DJANGO_SETTINGS_MODULE="config.settings",
        SLIDE_ROOTS=os.pathsep.join([str(SHARED), str(VAR / "slides")]),
        CELERY_BROKER_URL="filesystem://",
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    return env


def prepare(annotators: int) -> dict:
    os.environ.update(_env())
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import LabelClass, Membership, Project, Region
    from annotation.services.regions import regions_seed
    from slides.services import slide_ingest, slide_register
    from slides.synthetic import SyntheticSpec, write_synthetic_slide

    call_command("migrate", verbosity=0)
    project, _ = Project.objects.get_or_create(
        slug="load",
        defaults={
            "name": "Load",
            "target_mpp": 1.0,
            "region_size": 256,
            "redundancy_k": 3,
            "gold_mix_rate": 0.0,
        },
    )
    synthetic = VAR / "slides" / "load-8192.tiff"
    if not synthetic.exists():
        write_synthetic_slide(VAR / "slides", "load-8192", SyntheticSpec(8192, 8192, seed=11))
    for path in (SHARED / "slides" / "cmu-1-small-region.svs", synthetic):
        slide, _ = slide_register(path=str(path))
        if slide.status != "ready":
            slide_ingest(slide_id=slide.pk)
        project.slides.add(slide)
    label, _ = LabelClass.objects.get_or_create(project=project, name="tumour")
    needed = math.ceil(annotators / project.redundancy_k) + 5
    if Region.objects.filter(project=project).count() < needed:
        regions_seed(project=project, per_slide=needed, seed=1, created_by=None, min_tissue=0.3)
    tokens = []
    for i in range(annotators):
        user, _ = get_user_model().objects.get_or_create(username=f"load{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": "annotator"})
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return {"project": project.pk, "label": label.pk, "tokens": tokens}


MERGE_REGION = 512  # px at the merge project's resolution: a merge takes about a second


def prepare_merges(count: int) -> dict:
    """A second project with ``count`` regions, each submitted by three annotators (k is raised
    while they submit, so nothing merges before a phase asks for it)."""
    import datetime as dt_

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from annotation.models import Assignment, LabelClass, Membership, Project, Region
    from annotation.services.submissions import (
        ShapeInput,
        submission_save_draft,
        submission_submit,
    )
    from slides.models import Slide

    slide = Slide.objects.get(path=str(VAR / "slides" / "load-8192.tiff"))
    project, _ = Project.objects.get_or_create(
        slug="load-merges",
        defaults={
            "name": "Load merges",
            "target_mpp": slide.mpp or 1.0,
            "region_size": MERGE_REGION,
            "redundancy_k": 4,
            "gold_mix_rate": 0.0,
        },
    )
    project.slides.add(slide)
    label, _ = LabelClass.objects.get_or_create(project=project, name="tumour", order=1)
    LabelClass.objects.get_or_create(
        project=project, name="none", defaults={"order": 0, "is_background": True}
    )
    users = []
    for i in range(3):
        user, _ = get_user_model().objects.get_or_create(username=f"merger{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": "annotator"})
        users.append(user)
    Project.objects.filter(pk=project.pk).update(redundancy_k=4)
    side = MERGE_REGION
    per_row = 8192 // side
    have = list(Region.objects.filter(project=project).order_by("pk"))
    for i in range(len(have), count):
        x, y = (i % per_row) * side, (i // per_row) * side
        region = Region.objects.create(
            project=project, slide=slide, x=x, y=y, width=side, height=side, origin="seeded"
        )
        for j, user in enumerate(users):
            assignment = Assignment.objects.create(
                region=region, annotator=user, expires_at=timezone.now() + dt_.timedelta(days=1)
            )
            r = side * (0.25 + 0.03 * j)
            cx, cy = x + side / 2 + 6 * j, y + side / 2
            ring = [
                [cx + r * math.cos(2 * math.pi * a / 64), cy + r * math.sin(2 * math.pi * a / 64)]
                for a in range(64)
            ]
            geometry = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
            submission_save_draft(
                assignment=assignment,
                expected_version=1,
                shapes=[ShapeInput(label.pk, geometry)],
            )
            submission_submit(
                assignment=assignment, expected_version=2, outcome="shapes", user=user
            )
        have.append(region)
    Project.objects.filter(pk=project.pk).update(redundancy_k=3)
    return {"project": project.pk, "regions": [r.pk for r in have[:count]]}


def reset_merges(project_id: int) -> None:
    """Forget earlier phases' runs so that every merge of a phase does the full work."""
    from annotation.models import AnnotatorReliability, ConsensusJob, ConsensusRun

    ConsensusRun.objects.filter(region__project_id=project_id).delete()
    ConsensusJob.objects.filter(region__project_id=project_id).delete()
    AnnotatorReliability.objects.filter(project_id=project_id).delete()


class MergeFeeder(threading.Thread):
    """Queues one merge every ``interval`` s through the broker, as submits would."""

    def __init__(self, region_ids: list[int], interval: float, stop_at: float) -> None:
        super().__init__(daemon=True)
        self.region_ids, self.interval, self.stop_at = region_ids, interval, stop_at
        self.sent = 0

    def run(self) -> None:
        from celery import current_app

        for region_id in self.region_ids:
            if time.monotonic() >= self.stop_at:
                break
            current_app.send_task("annotation.merge_region", args=[region_id])
            self.sent += 1
            time.sleep(self.interval)


def merges_done(project_id: int) -> int:
    from annotation.models import ConsensusRun

    return ConsensusRun.objects.filter(region__project_id=project_id).count()


def background_training(seconds: float) -> None:
    """Train on a synthetic patch cache until ``seconds`` pass (run under nice 19)."""
    import tempfile

    import torch

    from bench.learning import synthetic_cache
    from learning.networks import UNetConfig
    from learning.training import TrainConfig, train

    try:
        os.nice(19 - os.nice(0))  # already 19 under `nice -n 19`; this covers a direct start
    except OSError:
        pass
    torch.set_num_threads(os.cpu_count() or 1)
    cache = synthetic_cache(96, 128, 3, seed=0)
    val = synthetic_cache(32, 128, 3, seed=1)
    config = TrainConfig(
        network=UNetConfig(num_classes=3, depth=3, base_width=16),
        batch_size=16,
        epochs=10_000,
        patience=10_000,
        device="cpu",
        amp=False,
    )
    deadline = time.monotonic() + seconds
    epochs = 0
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "checkpoint.pt"
        while time.monotonic() < deadline:
            result = train(config, cache, val, checkpoint, max_epochs_this_chunk=1)
            epochs = result.epoch
    print(json.dumps({"training_epochs": epochs, "niceness": os.nice(0)}), flush=True)


def start_training(seconds: float) -> subprocess.Popen[str]:
    command = [sys.executable, str(Path(__file__)), "--background-training", str(seconds)]
    if shutil.which("nice"):
        command = ["nice", "-n", "19", *command]
    return subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True)


def stored_versions(project_id: int) -> int:
    from django.db.models import F, Sum

    from annotation.models import Submission

    total = Submission.objects.filter(region__project_id=project_id).aggregate(
        s=Sum(F("version") - 1)
    )["s"]
    return int(total or 0)


class Annotator(threading.Thread):
    def __init__(
        self, port: int, token: str, setup: dict, stop_at: float, interval: float, seed: int
    ) -> None:
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.setup, self.stop_at, self.interval = setup, stop_at, interval
        self.rng = random.Random(seed)
        self.saves: list[float] = []
        self.next_region: list[float] = []
        self.tiles: list[float] = []
        self.errors: list[str] = []
        self.acked = 0

    def call(
        self, method: str, url: str, body: dict | None = None, extra: dict | None = None
    ) -> tuple[int, bytes, dict, float]:
        started = time.perf_counter()
        self.conn.request(
            method,
            url,
            json.dumps(body) if body is not None else None,
            {**self.headers, **(extra or {})},
        )
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data, dict(response.getheaders()), time.perf_counter() - started

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none hidden
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        time.sleep(self.rng.uniform(0, self.interval))  # a class does not start in lockstep
        code, data, _, seconds = self.call(
            "POST", f"/api/projects/{self.setup['project']}/next-region/"
        )
        self.next_region.append(seconds)
        if code != 200:
            self.errors.append(f"next-region {code}")
            return
        assignment = json.loads(data)
        region = assignment["region"]
        code, data, headers, _ = self.call("GET", f"/api/assignments/{assignment['id']}/work/")
        version = int(headers["ETag"].strip('"'))
        _, slide, _, _ = self.call("GET", f"/api/slides/{region['slide']}/")
        for level, col, row in self._region_tiles(region, json.loads(slide)["deepzoom"]):
            code, _, _, seconds = self.call(
                "GET", f"/dz/{region['slide']}_files/{level}/{col}_{row}.jpeg"
            )
            self.tiles.append(seconds)
            if code != 200:
                self.errors.append(f"tile {code}")
        vertices = 4
        while time.monotonic() < self.stop_at:
            vertices += 1
            polygon = self._polygon(region, vertices)
            code, data, headers, seconds = self.call(
                "PUT",
                f"/api/assignments/{assignment['id']}/work/",
                {
                    "shapes": [{"label_class": self.setup["label"], "geometry": polygon}],
                    "time_spent_seconds": vertices * self.interval,
                },
                {"If-Match": f'"{version}"'},
            )
            self.saves.append(seconds)
            if code == 200:
                self.acked += 1
                version = int(headers["ETag"].strip('"'))
            else:
                self.errors.append(f"save {code}")
            time.sleep(max(0.0, self.interval + self.rng.uniform(-0.5, 0.5) - seconds))

    @staticmethod
    def _region_tiles(region: dict, deepzoom: dict) -> list[tuple[int, int, int]]:
        """Tiles covering the region at the two finest zoom levels, as the workspace loads them."""
        tiles = []
        top = len(deepzoom["level_tiles"]) - 1
        size = deepzoom["tile_size"]
        for level in (top - 1, top):
            scale = 2 ** (top - level)
            cols, rows = deepzoom["level_tiles"][level]
            for row in range(
                region["y"] // scale // size,
                min(rows, (region["y"] + region["height"]) // scale // size + 1),
            ):
                for col in range(
                    region["x"] // scale // size,
                    min(cols, (region["x"] + region["width"]) // scale // size + 1),
                ):
                    tiles.append((level, col, row))
        return tiles[:24]

    def _polygon(self, region: dict, vertices: int) -> dict:
        cx, cy = region["x"] + region["width"] / 2, region["y"] + region["height"] / 2
        r = min(region["width"], region["height"]) / 3
        points = [
            [
                round(cx + r * math.cos(2 * math.pi * i / vertices) * self.rng.uniform(0.8, 1), 1),
                round(cy + r * math.sin(2 * math.pi * i / vertices) * self.rng.uniform(0.8, 1), 1),
            ]
            for i in range(vertices)
        ]
        return {"type": "Polygon", "coordinates": [points + [points[0]]]}


def _warm_up(port: int, token: str) -> None:
    """Load every gunicorn worker's URLconf and apps before timing (first requests import)."""

    def hit() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(5):
            conn.request("GET", "/api/projects/", headers={"Authorization": f"Token {token}"})
            conn.getresponse().read()
        conn.close()

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return round(1000 * values[min(len(values) - 1, int(q * (len(values) - 1)))], 1)


def _start_worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-c",
            "1",
            "-l",
            "warning",
            "-Q",
            "default,consensus,gpu",
        ],
        cwd=REPO,
        env=_env(),
    )


def run_phase(port: int, setup: dict, duration: float, interval: float) -> dict:
    """50 annotators (or ``--annotators``) for ``duration`` s; their figures and the save count."""
    before = stored_versions(setup["project"])
    stop_at = time.monotonic() + duration
    people = [
        Annotator(port, token, setup, stop_at, interval, seed=i)
        for i, token in enumerate(setup["tokens"])
    ]
    for p in people:
        p.start()
    for p in people:
        p.join(duration + 120)
    saves = [s for p in people for s in p.saves]
    nexts = [s for p in people for s in p.next_region]
    tiles = [s for p in people for s in p.tiles]
    errors = [e for p in people for e in p.errors]
    acked = sum(p.acked for p in people)
    stored = stored_versions(setup["project"]) - before
    return {
        "annotators": len(people),
        "duration_s": duration,
        "interval_s": interval,
        "saves": len(saves),
        "save_p50_ms": _pct(saves, 0.5),
        "save_p95_ms": _pct(saves, 0.95),
        "next_region_p50_ms": _pct(nexts, 0.5),
        "next_region_p95_ms": _pct(nexts, 0.95),
        "tile_p50_ms": _pct(tiles, 0.5),
        "tile_p95_ms": _pct(tiles, 0.95),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:10],
        "acked_saves": acked,
        "stored_versions": stored,
        "lost_saves": acked - stored,
    }


def merge_phase(
    port: int, setup: dict, merges: dict, args: argparse.Namespace, train: bool
) -> dict:
    """One phase with merges queued beside the annotators, with or without training."""
    reset_merges(merges["project"])
    training = start_training(args.duration) if train else None
    feeder = MergeFeeder(merges["regions"], args.merge_interval, time.monotonic() + args.duration)
    feeder.start()
    result = run_phase(port, setup, args.duration, args.interval)
    feeder.join(30)
    drained = time.monotonic() + 120
    while merges_done(merges["project"]) < feeder.sent and time.monotonic() < drained:
        time.sleep(1)
    result.update(merges_queued=feeder.sent, merges_done=merges_done(merges["project"]))
    if training is not None:
        out, _ = training.communicate(timeout=600)
        result["training"] = json.loads(out.strip().splitlines()[-1])
        result["training"]["returncode"] = training.returncode
    return result


def _machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument(
        "--training-comparison",
        action="store_true",
        help="two phases with merges running: without and with a nice-19 training run",
    )
    parser.add_argument("--merge-interval", type=float, default=2.0)
    parser.add_argument("--note", default="", help="stored in the JSON (e.g. machine sharing)")
    parser.add_argument("--background-training", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.background_training is not None:
        background_training(args.background_training)
        return
    machine = _machine()
    setup = prepare(args.annotators)
    merges = None
    if args.training_comparison:
        merges = prepare_merges(math.ceil(args.duration / args.merge_interval) + 2)
    worker = _start_worker()
    server = Server(env=_env())
    try:
        _warm_up(server.port, setup["tokens"][0])
        if merges is None:
            result = run_phase(server.port, setup, args.duration, args.interval)
        else:
            result = {
                "merges": merge_phase(server.port, setup, merges, args, train=False),
                "merges_and_training": merge_phase(server.port, setup, merges, args, train=True),
            }
    finally:
        server.stop()
        worker.terminate()
        worker.wait(30)
    print(json.dumps(result, indent=1))
    now = dt.datetime.now(dt.UTC)
    out = {
        "date": now.isoformat(timespec="seconds"),
        "machine": machine,
        "server": "gunicorn 2 workers x 4 threads, SQLite, one Celery worker",
        **({"note": args.note} if args.note else {}),
        **result,
    }
    if merges is None:
        name = f"annotate-load-{now.date().isoformat()}.json"
    else:
        out["training"] = (
            "learning.training.train on a synthetic 96-patch cache (128 px, U-Net depth 3, "
            "width 16, CPU, all cores) in a subprocess under nice -n 19"
        )
        out["merge_interval_s"] = args.merge_interval
        name = f"annotate-load-training-{now.date().isoformat()}.json"
    target = REPO / "bench" / "results" / name
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
