"""A light crop's latency while others send heavy crops (issue 14, finding 5): before and after.

Two servers run side by side, each gunicorn serving the project (2 workers x 4 threads) on one
SQLite database under ``var/bench-crop/``:

- **before**: ``CROP_MAX_SOURCE_PIXELS=0`` and ``CROP_HEAVY_READS=0``, i.e. no source cap and no
  bound on concurrent heavy reads (the crop API as the audit found it; its output caps and the
  "rectangle leaves the slide" check stay, as they were);
- **after**: the defaults (source cap 16 Mpx; reads over 4 Mpx take one of 1 slot per process,
  503 with Retry-After at once when it is taken). Any ``CROP_*`` variable in the environment
  reaches this side, e.g. ``CROP_HEAVY_WAIT_SECONDS=1`` to measure a wait for a slot.

The light user (one member with an API token) asks for a 256 x 256 level-0 crop of the real
CMU-1-Small-Region slide at a seeded position every 100 ms, on a fixed schedule whatever the
previous answer's delay (open loop, each on a new connection), and its latency, counted from when
the crop was due, is what is reported. The attackers (8 other members, one
thread and connection each) send, back to back and ignoring Retry-After, a crop of a
single-level 6144 x 6144 JPEG TIFF made by mirroring the CMU image (a flat scan like the
audit's):

- **heavy**: the whole slide at mpp 1000, a 3 x 3 px answer that reads 37.7 Mpx at level 0
  (the audit's request, sized to this slide); refused with 400 by the source cap after the fix;
- **at cap** (after only): a 4096 x 4096 box at mpp 1000, which reads exactly the cap
  (16.8 Mpx) and so is served, one per process at a time.

Each round measures, per side, the light user alone (``idle``) and under each attack; attackers
start 1 s before the light user's window, stop sending at its end, and their last requests are
drained (not measured) before the next window. Rounds alternate which side goes first, after a
warm-up request of each kind on each server. The machine is shared: its load average is recorded.

    python bench/crop_attack.py [--rounds 2] [--window 10] [--attackers 8]
    CROP_HEAVY_WAIT_SECONDS=1 python bench/crop_attack.py --label wait1s

Prints a table and writes bench/results/crop-attack[-<label>]-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.tiles import Server  # noqa: E402 - needs the path above

VAR = REPO / "var" / "bench-crop"
SHARED = Path(os.environ.get("HISTOCROWD_TEST_DATA", REPO.parent / "shared" / "data"))
CMU = SHARED / "slides" / "cmu-1-small-region.svs"
FLAT_SIDE = 6144
BEFORE = {"CROP_MAX_SOURCE_PIXELS": "0", "CROP_HEAVY_READS": "0"}
LIGHT_INTERVAL_S = 0.1  # the light user asks for a crop every 100 ms


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HISTOCROWD_VAR_DIR=str(VAR),
        DJANGO_SETTINGS_MODULE="config.settings",
        SLIDE_ROOTS=os.pathsep.join([str(SHARED), str(VAR / "slides")]),
        CELERY_BROKER_URL="filesystem://",
        TILE_PREBUILD_MAX_TILES="0",
        LOG_LEVEL="WARNING",
    )
    for name in ("DATABASE_URL", "HISTOCROWD_CACHE_URL", *BEFORE):
        env.pop(name, None)
    env.update(extra or {})
    return env


def write_flat_slide(path: Path, side: int) -> None:
    """A single-level tiled JPEG TIFF of ``side`` px a side: the CMU image mirrored to fill it."""
    import numpy as np
    import openslide
    import tifffile

    with openslide.OpenSlide(str(CMU)) as handle:
        image = np.asarray(handle.read_region((0, 0), 0, handle.dimensions).convert("RGB"))
    height, width = image.shape[:2]
    tile = 256

    def mirrored(start: int, size: int) -> np.ndarray:
        index = np.arange(start, start + tile) % (2 * size)
        return np.where(index >= size, 2 * size - 1 - index, index)

    def tiles():  # noqa: ANN202 - a generator of tiles, row by row
        for ty in range(0, side, tile):
            for tx in range(0, side, tile):
                yield image[np.ix_(mirrored(ty, height), mirrored(tx, width))]

    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        path,
        tiles(),
        shape=(side, side, 3),
        dtype=np.uint8,
        tile=(tile, tile),
        compression="jpeg",
        compressionargs={"level": 85},
        photometric="rgb",
        resolution=(1e4 / 0.5, 1e4 / 0.5),  # 0.5 micrometres per pixel, in pixels per cm
        resolutionunit="CENTIMETER",
    )


def prepare(attackers: int) -> dict:
    """Migrate, make the flat slide, ingest both slides in one project, log the users in."""
    os.environ.update(_env())
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.models import Membership, Project
    from slides.services import slide_ingest, slide_register, slide_set_mpp

    call_command("migrate", verbosity=0)
    flat = VAR / "slides" / f"flat-{FLAT_SIDE}.tiff"
    if not flat.exists():
        write_flat_slide(flat, FLAT_SIDE)
    project, _ = Project.objects.get_or_create(
        slug="crop-bench", defaults={"name": "Crop bench", "target_mpp": 1.0}
    )
    slides = {}
    for label, path in (("light", CMU), ("flat", flat)):
        slide, _ = slide_register(path=str(path), within=project.slides.all())
        if slide.status != "ready":
            slide_ingest(slide_id=slide.pk)
            slide.refresh_from_db()
        assert slide.status == "ready", slide.status_reason
        project.slides.add(slide)
        if not slide.mpp:
            slide = slide_set_mpp(slide=slide, mpp=0.5)
        slides[label] = {
            "id": slide.pk,
            "size": [slide.width, slide.height],
            "levels": slide.level_count,
            "mpp": slide.mpp,
        }
    tokens = []
    for i in range(attackers + 1):
        user, _ = get_user_model().objects.get_or_create(username=f"crop-bench-{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": "annotator"})
        tokens.append(f"Token {Token.objects.get_or_create(user=user)[0].key}")
    after = {
        name: getattr(settings, name)
        for name in (
            "CROP_MAX_SOURCE_PIXELS",
            "CROP_HEAVY_SOURCE_PIXELS",
            "CROP_HEAVY_READS",
            "CROP_HEAVY_WAIT_SECONDS",
            "CROP_MAX_PIXELS",
        )
    }
    return {"slides": slides, "light_token": tokens[0], "tokens": tokens[1:], "after": after}


def _get(conn: http.client.HTTPConnection, url: str, token: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn.request("GET", url, headers={"Authorization": token})
    response = conn.getresponse()
    response.read()
    return response.status, time.perf_counter() - started


class Attacker(threading.Thread):
    """Sends one URL back to back on its own connection until told to stop."""

    def __init__(self, port: int, url: str, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.url, self.token, self.stop = port, url, token, stop
        self.statuses: Counter[int] = Counter()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        while not self.stop.is_set():
            try:
                status, _ = _get(conn, self.url, self.token)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self.statuses[status] += 1  # an attacker ignores Retry-After: no pause on 503
        conn.close()


def light_window(port: int, slide: dict, token: str, seconds: float, rng: random.Random) -> dict:
    """The light user's 256 x 256 crops, sent on a fixed schedule for ``seconds``.

    Open loop: a crop is due every ``LIGHT_INTERVAL_S`` whether or not the last one came back
    (each on its own connection), and its latency counts from when it was due. A closed loop
    would send nothing while stalled and so hide the stall from its percentiles.
    """
    width, height = slide["size"]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def fetch(url: str, due: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            status, _ = _get(conn, url, token)
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            conn.close()
        with lock:
            latencies.append(time.perf_counter() - due)
            statuses[status] += 1

    threads = []
    start = time.perf_counter()
    for i in range(round(seconds / LIGHT_INTERVAL_S)):
        due = start + i * LIGHT_INTERVAL_S
        time.sleep(max(0.0, due - time.perf_counter()))
        x, y = rng.randrange(0, width - 256), rng.randrange(0, height - 256)
        url = f"/api/slides/{slide['id']}/crop/?x={x}&y={y}&width=256&height=256&format=jpeg"
        thread = threading.Thread(target=fetch, args=(url, due), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "statuses": statuses}


def run_condition(
    port: int, setup: dict, attack_url: str | None, seconds: float, rng: random.Random
) -> dict:
    stop = threading.Event()
    attackers = [Attacker(port, attack_url, t, stop) for t in setup["tokens"]] if attack_url else []
    for attacker in attackers:
        attacker.start()
    if attackers:
        time.sleep(1.0)  # the heavy requests are in flight before the light user starts
    began = time.monotonic()
    light = light_window(port, setup["slides"]["light"], setup["light_token"], seconds, rng)
    measured = time.monotonic() - began
    stop.set()
    drain = time.monotonic()
    for attacker in attackers:
        attacker.join()
    attack = Counter()
    for attacker in attackers:
        attack.update(attacker.statuses)
    return {
        "latencies": light["latencies"],
        "light_statuses": dict(light["statuses"]),
        "attack_statuses": dict(attack),
        "window_s": round(measured, 1),
        "drain_s": round(time.monotonic() - drain, 1),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summarise(samples: list[dict]) -> dict:
    latencies = [v for s in samples for v in s["latencies"]]
    light, attack = Counter(), Counter()
    for s in samples:
        light.update(s["light_statuses"])
        attack.update(s["attack_statuses"])
    return {
        "light_requests": len(latencies),
        "light_p50_ms": round(1000 * statistics.median(latencies), 1),
        "light_p95_ms": _pct(latencies, 0.95),
        "light_max_ms": round(1000 * max(latencies), 1),
        "light_statuses": {str(k): v for k, v in sorted(light.items())},
        "attack_statuses": {str(k): v for k, v in sorted(attack.items())},
        "windows_s": [s["window_s"] for s in samples],
        "drains_s": [s["drain_s"] for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per measured window")
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--label", default="", help="names a variant's files: crop-attack-LABEL-")
    args = parser.parse_args()
    started = time.monotonic()
    load_start = os.getloadavg()
    setup = prepare(args.attackers)
    flat = setup["slides"]["flat"]
    heavy = f"/api/slides/{flat['id']}/crop/?x=0&y=0&width={FLAT_SIDE}&height={FLAT_SIDE}&mpp=1000"
    at_cap = f"/api/slides/{flat['id']}/crop/?x=0&y=0&width=4096&height=4096&mpp=1000"
    conditions = {
        "before": [("idle", None), ("heavy", heavy)],
        "after": [("idle", None), ("heavy", heavy), ("at cap", at_cap)],
    }
    servers = {"before": Server(_env(BEFORE)), "after": Server(_env())}
    samples: dict[str, list[dict]] = {
        f"{side} / {name}": [] for side, conds in conditions.items() for name, _ in conds
    }
    warm = {}
    try:
        for side, server in servers.items():  # warm-up: handles opened, code paths loaded
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
            light = setup["slides"]["light"]
            light_url = f"/api/slides/{light['id']}/crop/?x=0&y=0&width=256&height=256"
            warm[side] = {
                url: _get(conn, url, setup["light_token"])[0]
                for url in (light_url, light_url, heavy, at_cap)
            }
            conn.close()
            if warm[side][light_url] != 200:
                raise SystemExit(f"{side}: the light crop answered {warm[side][light_url]}")
        rng = random.Random(7)
        for round_no in range(args.rounds):
            order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
            for side in order:
                for name, url in conditions[side]:
                    print(f"round {round_no + 1}: {side} / {name} ...", flush=True)
                    samples[f"{side} / {name}"].append(
                        run_condition(servers[side].port, setup, url, args.window, rng)
                    )
    finally:
        for server in servers.values():
            server.stop()
    results = {key: summarise(value) for key, value in samples.items()}
    now = dt.datetime.now(dt.UTC)
    out = {
        "benchmark": "light crop latency under heavy-crop attack (issue 14, finding 5)",
        "date": now.isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in load_start],
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "server": "gunicorn 2 workers x 4 threads per side, SQLite, both sides running at once",
        "slides": setup["slides"],
        "settings_before": {k: int(v) for k, v in BEFORE.items()},
        "settings_after": setup["after"],
        "attack_urls": {"heavy": heavy, "at cap": at_cap},
        "attackers": args.attackers,
        "label": args.label,
        "rounds": args.rounds,
        "window_s": args.window,
        "warm_up_statuses": warm,
        "results": results,
        "wall_s": round(time.monotonic() - started, 1),
    }
    table = _table(out)
    print(table)
    name = "-".join(filter(None, ["crop-attack", args.label, now.date().isoformat()]))
    target = REPO / "bench" / "results" / name
    target.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    target.with_suffix(".md").write_text(table)
    print(f"wrote {target.with_suffix('.json').relative_to(REPO)} and .md")


def _table(out: dict) -> str:
    machine = out["machine"]
    lines = [
        f"# Light 256² crop under heavy-crop attack ({out['date']})",
        "",
        f"{out['server']}; {machine['cpus']} CPUs ({machine['platform']}); "
        f"{out['attackers']} attackers; {out['rounds']} interleaved rounds of "
        f"{out['window_s']:.0f} s windows; load average at start {machine['load_average_at_start']}"
        f", at end {machine['load_average_at_end']}.",
        "",
        "| side / attack | light n | light p50 ms | light p95 ms | light max ms "
        "| light statuses | attack statuses |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for key, r in out["results"].items():
        lines.append(
            f"| {key} | {r['light_requests']} | {r['light_p50_ms']} | {r['light_p95_ms']} "
            f"| {r['light_max_ms']} | {r['light_statuses']} | {r['attack_statuses']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
