"""Class-sized load: 50 annotators fetch their next region, load its tiles and save a polygon
every 5 s, against gunicorn (2 workers x 4 threads) with a Celery worker running.

    python bench/annotate_load.py [--annotators 50] [--duration 300] [--interval 5]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--interval", type=float, default=5)
    args = parser.parse_args()
    setup = prepare(args.annotators)
    before = stored_versions(setup["project"])
    worker = subprocess.Popen(
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
    server = Server(env=_env())
    try:
        _warm_up(server.port, setup["tokens"][0])
        stop_at = time.monotonic() + args.duration
        people = [
            Annotator(server.port, token, setup, stop_at, args.interval, seed=i)
            for i, token in enumerate(setup["tokens"])
        ]
        for p in people:
            p.start()
        for p in people:
            p.join(args.duration + 120)
    finally:
        server.stop()
        worker.terminate()
        worker.wait(30)
    saves = [s for p in people for s in p.saves]
    nexts = [s for p in people for s in p.next_region]
    tiles = [s for p in people for s in p.tiles]
    errors = [e for p in people for e in p.errors]
    acked = sum(p.acked for p in people)
    stored = stored_versions(setup["project"]) - before
    result = {
        "annotators": args.annotators,
        "duration_s": args.duration,
        "interval_s": args.interval,
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
    print(json.dumps(result, indent=1))
    now = dt.datetime.now(dt.UTC)
    out = {
        "date": now.isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "server": "gunicorn 2 workers x 4 threads, SQLite, one Celery worker",
        **result,
    }
    target = REPO / "bench" / "results" / f"annotate-load-{now.date().isoformat()}.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
