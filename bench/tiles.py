"""Tile-serving benchmark: the floor (F), OpenSlide's obvious server (O) and this project (P).

One seeded viewer trace per client (pans and zooms over several levels, each tile requested at
most twice), 8 concurrent clients, each endpoint behind the same gunicorn (2 workers x 4
threads), the same session authentication and the same membership check. The server is
restarted before each run so per-process caches start cold; the pre-built tile store is part of
ingest and its cost (time, disk) is reported beside the figures.

    python bench/tiles.py [--clients 8] [--views 14] [--synthetic-size 20000]

Prints a table and writes bench/results/tiles-<date>.json.
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
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_VAR = REPO / "var" / "bench"
SHARED = Path(os.environ.get("HISTOCROWD_TEST_DATA", REPO.parent / "shared" / "data"))
VIEWPORT = (1280, 800)
TILE = 254


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HISTOCROWD_VAR_DIR=str(BENCH_VAR),
        DJANGO_SETTINGS_MODULE="bench.settings",
        SLIDE_ROOTS=os.pathsep.join([str(SHARED), str(BENCH_VAR / "slides")]),
        CELERY_BROKER_URL="filesystem://",
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    return env


def prepare(synthetic_size: int, clients: int) -> dict:
    """Migrate, create users and a project, ingest the three slides (cached between runs)."""
    os.environ.update(_env())
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.models import Membership, Project
    from slides.services import slide_ingest, slide_register
    from slides.synthetic import SyntheticSpec, write_synthetic_slide

    call_command("migrate", verbosity=0)
    project, _ = Project.objects.get_or_create(
        slug="bench", defaults={"name": "Bench", "target_mpp": 0.5}
    )
    users = []
    for i in range(clients):
        user, _ = get_user_model().objects.get_or_create(username=f"bench{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": "annotator"})
        users.append(user)
    synthetic_dir = BENCH_VAR / "slides"
    name = f"synthetic-{synthetic_size}"
    synthetic = synthetic_dir / f"{name}.tiff"
    if not synthetic.exists():
        started = time.perf_counter()
        write_synthetic_slide(
            synthetic_dir, name, SyntheticSpec(synthetic_size, synthetic_size, seed=7)
        )
        print(f"wrote {synthetic.name} in {time.perf_counter() - started:.0f} s")
    paths = {
        "CMU-1-Small-Region.svs": SHARED / "slides" / "cmu-1-small-region.svs",
        "hamamatsu-tritc.ndpi": SHARED / "slides" / "hamamatsu-tritc.ndpi",
        f"synthetic {synthetic_size}^2": synthetic,
    }
    slides = {}
    for label, path in paths.items():
        slide, _ = slide_register(path=str(path), within=project.slides.all())
        if slide.status != "ready":
            print(f"ingesting {label} ...")
            slide_ingest(slide_id=slide.pk)
            slide.refresh_from_db()
        assert slide.status == "ready", slide.status_reason
        project.slides.add(slide)
        slides[label] = {
            "id": slide.pk,
            "width": slide.width,
            "height": slide.height,
            "level_dimensions": slide.deepzoom["level_dimensions"],
            "prebuilt_tiles": slide.tiles_prebuilt,
            "prebuild_seconds": round(slide.tiles_prebuild_seconds or 0, 1),
            "prebuild_mb": round((slide.tiles_prebuild_bytes or 0) / 1e6, 1),
        }
    cookies = [_session_cookie(user) for user in users]
    return {"slides": slides, "cookies": cookies}


def _session_cookie(user: object) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]  # the login guard
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}"


def viewer_trace(
    level_dimensions: list[list[int]], views: int, seed: int
) -> list[tuple[int, int, int]]:
    """Tiles a viewer fetches while panning and zooming; each tile at most twice.

    It starts at the level where the whole slide fits the viewport, then zooms in and out around
    random points and pans; for each view it fetches the visible tiles of the view's level and of
    the level below (OpenSeadragon draws the coarser level first while the finer one loads).
    """
    rng = random.Random(seed)
    top = len(level_dimensions) - 1
    fit = (
        next(
            (
                lvl
                for lvl, (w, h) in enumerate(level_dimensions)
                if w > VIEWPORT[0] or h > VIEWPORT[1]
            ),
            top + 1,
        )
        - 1
    )
    fit = max(0, fit)
    level = fit
    width, height = level_dimensions[level]
    cx, cy = width / 2, height / 2
    seen: Counter[tuple[int, int, int]] = Counter()
    trace: list[tuple[int, int, int]] = []
    for _ in range(views):
        for lvl in (level - 1, level):
            if lvl < 0:
                continue
            scale = 2 ** (level - lvl)
            lw, lh = level_dimensions[lvl]
            x0, x1 = (cx - VIEWPORT[0] / 2) / scale, (cx + VIEWPORT[0] / 2) / scale
            y0, y1 = (cy - VIEWPORT[1] / 2) / scale, (cy + VIEWPORT[1] / 2) / scale
            cols = range(max(0, int(x0 // TILE)), min(math.ceil(lw / TILE), int(x1 // TILE) + 1))
            rows = range(max(0, int(y0 // TILE)), min(math.ceil(lh / TILE), int(y1 // TILE) + 1))
            for row in rows:
                for col in cols:
                    key = (lvl, col, row)
                    if seen[key] < 2:
                        seen[key] += 1
                        trace.append(key)
        move = rng.random()
        if move < 0.45 and level < top:
            level += 1
            cx, cy = cx * 2 + rng.uniform(-300, 300), cy * 2 + rng.uniform(-200, 200)
        elif move < 0.6 and level > fit:
            level -= 1
            cx, cy = cx / 2, cy / 2
        else:
            cx += rng.uniform(-0.8, 0.8) * VIEWPORT[0]
            cy += rng.uniform(-0.8, 0.8) * VIEWPORT[1]
        width, height = level_dimensions[level]
        cx, cy = min(max(cx, 0), width), min(max(cy, 0), height)
    return trace


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn, 2 workers x 4 threads, started fresh so every run begins with cold caches."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-w",
                "2",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--keep-alive",
                "30",
            ],
            cwd=REPO,
            env=env or _env(),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def replay(port: int, urls_per_client: list[list[str]], cookies: list[str]) -> dict:
    latencies: list[float] = []
    errors = Counter()
    lock = threading.Lock()

    def client(urls: list[str], cookie: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local = []
        for url in urls:
            started = time.perf_counter()
            conn.request("GET", url, headers={"Cookie": cookie})
            response = conn.getresponse()
            body = response.read()
            local.append(time.perf_counter() - started)
            if response.status != 200 or not body:
                errors[response.status] += 1
        conn.close()
        with lock:
            latencies.extend(local)

    threads = [
        threading.Thread(target=client, args=(u, c))
        for u, c in zip(urls_per_client, cookies, strict=True)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(wall, 3),
        "tiles_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 2),
        "errors": dict(errors),
    }


ENDPOINTS = {
    "F0": "/bench/fixed-anonymous/{id}_files/{l}/{c}_{r}.jpeg",
    "F": "/bench/fixed/{id}_files/{l}/{c}_{r}.jpeg",
    "O": "/bench/openslide/{id}_files/{l}/{c}_{r}.jpeg",
    "P": "/dz/{id}_files/{l}/{c}_{r}.jpeg",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--views", type=int, default=14)
    parser.add_argument("--synthetic-size", type=int, default=20000)
    args = parser.parse_args()
    setup = prepare(args.synthetic_size, args.clients)
    results: dict[str, dict[str, dict]] = {}
    pooled: dict[str, list[dict]] = {name: [] for name in ENDPOINTS}
    for label, slide in setup["slides"].items():
        traces = [
            viewer_trace(slide["level_dimensions"], args.views, seed=1000 + i)
            for i in range(args.clients)
        ]
        results[label] = {}
        for name, pattern in ENDPOINTS.items():
            urls = [
                [pattern.format(id=slide["id"], l=lvl, c=c, r=r) for lvl, c, r in trace]
                for trace in traces
            ]
            server = Server()
            try:
                run = replay(server.port, urls, setup["cookies"])
            finally:
                server.stop()
            results[label][name] = run
            pooled[name].append(run)
    _report(setup, results, pooled, args)


def _report(setup: dict, results: dict, pooled: dict, args: argparse.Namespace) -> None:
    header = f"{'slide':<26}{'ep':<4}{'tiles/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    ratios = {}
    for label, runs in results.items():
        for name, run in runs.items():
            print(
                f"{label:<26}{name:<4}{run['tiles_per_s']:>9.1f}{run['p50_ms']:>9.2f}"
                f"{run['p95_ms']:>9.2f}{sum(run['errors'].values()):>8}"
            )
        ratios[label] = {
            "P/O": round(runs["P"]["tiles_per_s"] / runs["O"]["tiles_per_s"], 2),
            "P/F": round(runs["P"]["tiles_per_s"] / runs["F"]["tiles_per_s"], 2),
            "F/F0": round(runs["F"]["tiles_per_s"] / runs["F0"]["tiles_per_s"], 2),
        }
    pooled_rate = {
        name: sum(r["requests"] for r in runs) / sum(r["seconds"] for r in runs)
        for name, runs in pooled.items()
    }
    ratios["pooled"] = {
        "P/O": round(pooled_rate["P"] / pooled_rate["O"], 2),
        "P/F": round(pooled_rate["P"] / pooled_rate["F"], 2),
        "F/F0": round(pooled_rate["F"] / pooled_rate["F0"], 2),
    }
    print("\nratios (tiles/s): " + json.dumps(ratios, indent=1))
    print(
        "\npre-built tile store (ingest): "
        + json.dumps(
            {
                k: {x: v[x] for x in ("prebuilt_tiles", "prebuild_seconds", "prebuild_mb")}
                for k, v in setup["slides"].items()
            },
            indent=1,
        )
    )
    now = dt.datetime.now(dt.UTC)
    out = {
        "date": now.isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor(),
        },
        "setup": {
            "clients": args.clients,
            "views_per_client": args.views,
            "server": "gunicorn 2 workers x 4 threads, session auth + membership check",
            "tile": "254 px + overlap 1 (O and P identical geometry)",
        },
        "slides": setup["slides"],
        "results": results,
        "ratios": ratios,
    }
    target = REPO / "bench" / "results" / f"tiles-{now.date().isoformat()}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {target.relative_to(REPO)}")


if __name__ == "__main__":
    main()
