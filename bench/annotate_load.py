"""Class-sized load: 50 annotators fetch their next region, load its tiles and save a polygon
every 5 s, against gunicorn (2 workers x 4 threads) with a Celery worker running.

    python bench/annotate_load.py [--annotators 50] [--duration 300] [--interval 5]
    python bench/annotate_load.py --training-comparison [--duration 120]
    python bench/annotate_load.py --annotators 200 --ramp 10 --submit-after 6 18 --merges \
        --duration 180 --database-url postgres://postgres@127.0.0.1:5432/hc_loadbench \
        --broker-url redis://127.0.0.1:6379/0 --key-prefix hc-loadbench:

The second form runs two phases of ``--duration`` each with merges queued every
``--merge-interval`` s beside the annotators: once alone, once with a training run at the lowest
CPU priority (``nice -n 19``: the pure learning loop, ``learning.training.train`` on a synthetic
patch cache, in a subprocess) on the same machine. Writes
bench/results/annotate-load-training-<date>.json.

The third form is a class starting a session together on PostgreSQL (create the database first,
``createdb -h 127.0.0.1 -U postgres hc_loadbench``; drop it after): first next-region calls
spread over ``--ramp`` s, a save every ``--interval`` s, and after ``--submit-after LO HI`` saves
(drawn per region) a submit and the next region; merges are queued beside them on a real worker,
and the submissions' own merges run too. Its figures are split: the start-up burst (each
annotator's first next-region), and next-region and save after ``--steady-after`` s. After the
run it checks that work is counted once: acked saves + submits == stored versions, acked submits
== submitted rows, no duplicate (region, annotator) slot, no region over k + extra slots, and no
consensus run that used a submission or an annotator twice. Writes
bench/results/annotate-load-postgres-<date>.json and a table beside it (.md).

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
import re
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


# DATABASE_URL, CELERY_BROKER_URL and CELERY_REDIS_KEY_PREFIX given on the command line; by
# default the embedded SQLite file under VAR and the filesystem broker.
BACKENDS: dict[str, str] = {}


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
    env.pop("CELERY_REDIS_KEY_PREFIX", None)
    env.update(BACKENDS)
    return env


def _postgres() -> bool:
    return BACKENDS.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def prepare(annotators: int, regions: int = 0) -> dict:
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
        slide, _ = slide_register(path=str(path), within=project.slides.all())
        if slide.status != "ready":
            slide_ingest(slide_id=slide.pk)
        project.slides.add(slide)
    label, _ = LabelClass.objects.get_or_create(project=project, name="tumour")
    needed = max(math.ceil(annotators / project.redundancy_k) + 5, regions)
    if Region.objects.filter(project=project, status="open").count() < needed:
        regions_seed(project=project, per_slide=needed, seed=1, created_by=None, min_tissue=0.3)
    if Region.objects.filter(project=project, status="open").count() < needed:
        # A class that submits needs more regions than the two slides' tissue holds.
        large = VAR / "slides" / "load-16384.tiff"
        if not large.exists():
            write_synthetic_slide(
                VAR / "slides",
                "load-16384",
                SyntheticSpec(16384, 16384, seed=12, tissue_blobs=5, tissue_coverage=0.8),
            )
        slide, _ = slide_register(path=str(large), within=project.slides.all())
        if slide.status != "ready":
            slide_ingest(slide_id=slide.pk)
        project.slides.add(slide)
        regions_seed(project=project, per_slide=needed, seed=2, created_by=None, min_tissue=0.3)
    tokens = []
    for i in range(annotators):
        user, _ = get_user_model().objects.get_or_create(username=f"load{i}")
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": "annotator"})
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return {
        "project": project.pk,
        "label": label.pk,
        "tokens": tokens,
        "k": project.redundancy_k,
        "regions": Region.objects.filter(project=project, status="open").count(),
    }


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
    from slides.services import slide_ingest, slide_register

    path = VAR / "slides" / "load-8192.tiff"
    # The load project's row of the same file, for its mpp (prepare() ingested it).
    first = Slide.objects.filter(path=str(path)).order_by("pk").first()
    project, _ = Project.objects.get_or_create(
        slug="load-merges",
        defaults={
            "name": "Load merges",
            "target_mpp": (first.mpp if first else None) or 1.0,
            "region_size": MERGE_REGION,
            "redundancy_k": 4,
            "gold_mix_rate": 0.0,
        },
    )
    # A slide row belongs to one project: this project registers the file for itself.
    slide, _ = slide_register(path=str(path), within=project.slides.all())
    if slide.status != "ready":
        slide_ingest(slide_id=slide.pk)
        slide.refresh_from_db()
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
    """One student: next region, its tiles, a save every ``interval`` s; with ``submit_after``
    (saves per region, drawn in [lo, hi]) a submit and the next region after that many saves.

    Latencies are kept as (seconds since the phase began, seconds taken), so the start-up burst
    and the steady state can be told apart.
    """

    def __init__(
        self,
        port: int,
        token: str,
        setup: dict,
        started: float,
        stop_at: float,
        interval: float,
        seed: int,
        ramp: float | None = None,
        submit_after: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.setup, self.started, self.stop_at = setup, started, stop_at
        self.interval = interval
        self.ramp = interval if ramp is None else ramp
        self.submit_after = submit_after
        self.rng = random.Random(seed)
        self.saves: list[tuple[float, float]] = []
        self.next_region: list[tuple[float, float]] = []
        self.submits: list[tuple[float, float]] = []
        self.tiles: list[float] = []
        self.errors: list[str] = []
        self.acked = 0
        self.acked_submits = 0
        self.nothing_left = 0
        self._slides: dict[int, dict] = {}

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

    def _since(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none hidden
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _open_next(self) -> tuple[dict, int] | None:
        """Ask for the next region, read its draft's version, load its tiles as the page does."""
        at = self._since()
        code, data, _, seconds = self.call(
            "POST", f"/api/projects/{self.setup['project']}/next-region/"
        )
        self.next_region.append((at, seconds))
        if code == 204:
            self.nothing_left += 1  # the campaign ran out of regions: not an error, but reported
            return None
        if code != 200:
            self.errors.append(f"next-region {code}")
            return None
        assignment = json.loads(data)
        region = assignment["region"]
        code, _, headers, _ = self.call("GET", f"/api/assignments/{assignment['id']}/work/")
        if code != 200:
            self.errors.append(f"work {code}")
            return None
        version = int(headers["ETag"].strip('"'))
        if region["slide"] not in self._slides:
            _, slide, _, _ = self.call("GET", f"/api/slides/{region['slide']}/")
            self._slides[region["slide"]] = json.loads(slide)["deepzoom"]
        for level, col, row in self._region_tiles(region, self._slides[region["slide"]]):
            code, _, _, seconds = self.call(
                "GET", f"/dz/{region['slide']}_files/{level}/{col}_{row}.jpeg"
            )
            self.tiles.append(seconds)
            if code != 200:
                self.errors.append(f"tile {code}")
        return assignment, version

    def _saves_before_submit(self) -> int | None:
        return self.rng.randint(*self.submit_after) if self.submit_after else None

    def _run(self) -> None:
        time.sleep(self.rng.uniform(0, self.ramp))  # a class does not start in lockstep
        opened = self._open_next()
        if opened is None:
            return
        assignment, version = opened
        vertices, due = 4, self._saves_before_submit()
        while time.monotonic() < self.stop_at:
            vertices += 1
            polygon = self._polygon(assignment["region"], vertices)
            at = self._since()
            code, data, headers, seconds = self.call(
                "PUT",
                f"/api/assignments/{assignment['id']}/work/",
                {
                    "shapes": [{"label_class": self.setup["label"], "geometry": polygon}],
                    "time_spent_seconds": vertices * self.interval,
                },
                {"If-Match": f'"{version}"'},
            )
            self.saves.append((at, seconds))
            if code == 200:
                self.acked += 1
                version = int(headers["ETag"].strip('"'))
            else:
                self.errors.append(f"save {code}")
            spent = seconds
            if due is not None and vertices - 4 >= due and time.monotonic() < self.stop_at:
                at = self._since()
                code, _, headers, seconds = self.call(
                    "POST",
                    f"/api/assignments/{assignment['id']}/submit/",
                    {"outcome": "shapes"},
                    {"If-Match": f'"{version}"'},
                )
                self.submits.append((at, seconds))
                spent += seconds
                if code != 200:
                    self.errors.append(f"submit {code}")
                    return
                self.acked_submits += 1
                began = time.perf_counter()
                opened = self._open_next()
                if opened is None:
                    return
                assignment, version = opened
                vertices, due = 4, self._saves_before_submit()
                spent += time.perf_counter() - began
            time.sleep(max(0.0, self.interval + self.rng.uniform(-0.5, 0.5) - spent))

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


def _figures(pairs: list[tuple[float, float]], prefix: str) -> dict:
    values = [seconds for _, seconds in pairs]
    return {
        f"{prefix}_count": len(values),
        f"{prefix}_p50_ms": _pct(values, 0.5),
        f"{prefix}_p95_ms": _pct(values, 0.95),
        f"{prefix}_max_ms": round(1000 * max(values), 1) if values else float("nan"),
    }


def counted_once(project_id: int) -> dict:
    """Each submission counted once: slots, rows and consensus inputs, read from the database."""
    from django.db.models import Count, F, Q

    from annotation.models import (
        Assignment,
        AssignmentStatus,
        ConsensusRun,
        Region,
        Submission,
        SubmissionStatus,
    )

    duplicates = (
        Assignment.objects.filter(region__project_id=project_id)
        .values("region", "annotator")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    over_k = (
        Region.objects.filter(project_id=project_id)
        .annotate(
            taken=Count(
                "assignments",
                filter=Q(
                    assignments__status__in=[AssignmentStatus.ACTIVE, AssignmentStatus.SUBMITTED]
                ),
            )
        )
        .filter(taken__gt=F("project__redundancy_k") + F("extra_slots"))
        .count()
    )
    repeated = 0
    for inputs in ConsensusRun.objects.filter(region__project_id=project_id).values_list(
        "inputs", flat=True
    ):
        submissions, annotators = [i[0] for i in inputs], [i[2] for i in inputs]
        if len(set(submissions)) != len(submissions) or len(set(annotators)) != len(annotators):
            repeated += 1
    return {
        "submitted_rows": Submission.objects.filter(
            region__project_id=project_id, status=SubmissionStatus.SUBMITTED
        ).count(),
        "duplicate_slots": duplicates,
        "regions_over_k_plus_extra": over_k,
        "consensus_runs": ConsensusRun.objects.filter(region__project_id=project_id).count(),
        "consensus_runs_with_a_repeated_input": repeated,
    }


def merges_pending(project_id: int) -> int:
    """Regions whose every slot is submitted but that no merge has published yet."""
    from django.db.models import Count, Exists, F, OuterRef, Q

    from annotation.models import ConsensusRun, Region, SubmissionStatus

    return (
        Region.objects.filter(project_id=project_id)
        .annotate(
            done=Count("submissions", filter=Q(submissions__status=SubmissionStatus.SUBMITTED))
        )
        .filter(done__gte=F("project__redundancy_k") + F("extra_slots"))
        .exclude(Exists(ConsensusRun.objects.filter(region=OuterRef("pk"))))
        .count()
    )


def _statement(query: str, relation: str | None) -> str:
    """A waiting statement: its verb, the table it reads or writes (the first one it names, as
    pg_stat_activity keeps only the query's first 1 kB), and the table of the row it waits on."""
    verb = query.split(None, 1)[0].upper() if query.strip() else "?"
    table = re.search(r'(?:SELECT|FROM|UPDATE|INTO|DELETE FROM) "(\w+)"', query)
    name = f"{verb} {table.group(1) if table else '?'}"
    return f"{name}, waiting on a row of {relation}" if relation else name


# Process ids of the run's gunicorn and Celery worker (set by main), for the CPU account.
PROCESSES: dict[str, int] = {}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc; 0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's and Celery's children do the work)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Cores used during a phase: the run's own processes, and everything else on the machine.

    The machine is shared with other engineers' test runs; this says whose CPU time it was.
    PostgreSQL backends are those of this run's database, seen by the sampler (a backend's time
    before its first sample is missed).
    """

    def __init__(self) -> None:
        self.available = Path("/proc/stat").exists()
        self.started = time.monotonic()
        self.backends: dict[int, list[float]] = {}  # pid -> [first seen, last seen] CPU s
        if self.available:
            self.first = self._own()
            self.busy = _machine_busy()

    def _own(self) -> dict[str, float]:
        own = {name: sum(_cpu_seconds(p) for p in _tree(pid)) for name, pid in PROCESSES.items()}
        times = os.times()
        own["load client (this process)"] = times.user + times.system
        return own

    def see_backends(self, pids: list[int]) -> None:
        for pid in pids:
            seconds = _cpu_seconds(pid)
            self.backends.setdefault(pid, [seconds, seconds])[1] = seconds

    def cores(self) -> dict[str, float]:
        if not self.available:
            return {}
        wall = time.monotonic() - self.started
        now = self._own()
        used = {name: (now[name] - self.first.get(name, 0.0)) / wall for name in now}
        if _postgres():
            used["postgres (this database)"] = sum(b - a for a, b in self.backends.values()) / wall
        total = (_machine_busy() - self.busy) / wall
        used["everything else on the machine"] = total - sum(used.values())
        used["machine total"] = total
        return {name: round(value, 2) for name, value in used.items()}


class LoadSampler(threading.Thread):
    """Every second: on PostgreSQL, which statements wait on a lock; every ``every`` s, the
    1-minute load average (the machine is shared, so say how busy it was)."""

    def __init__(self, stop: threading.Event, meter: CpuMeter, every: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.stop, self.meter, self.every = stop, meter, every
        self.samples: list[float] = []
        self.lock_waits: dict[str, int] = {}  # statement -> backends seen waiting, summed
        self.most_waiting = 0

    def run(self) -> None:
        from django.db import connection

        ticks = 0
        try:
            while not self.stop.is_set():
                if ticks % max(1, round(self.every)) == 0:
                    self.samples.append(round(os.getloadavg()[0], 2))
                if connection.vendor == "postgresql":
                    self._sample_locks(connection)
                ticks += 1
                self.stop.wait(1.0)
        finally:
            connection.close()

    def _sample_locks(self, connection: object) -> None:
        with connection.cursor() as cursor:
            # A row-lock waiter holds or awaits the row's tuple lock: that names the table.
            cursor.execute(
                "SELECT a.query, (SELECT l.relation::regclass::text FROM pg_locks l "
                "WHERE l.pid = a.pid AND l.locktype = 'tuple' ORDER BY l.granted LIMIT 1) "
                "FROM pg_stat_activity a WHERE a.datname = current_database() "
                "AND a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()"
            )
            waiting = cursor.fetchall()
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend'"
            )
            self.meter.see_backends([row[0] for row in cursor.fetchall()])
        self.most_waiting = max(self.most_waiting, len(waiting))
        for query, relation in waiting:
            name = _statement(query, relation)
            self.lock_waits[name] = self.lock_waits.get(name, 0) + 1


def run_phase(
    port: int,
    setup: dict,
    duration: float,
    interval: float,
    ramp: float | None = None,
    submit_after: tuple[int, int] | None = None,
    steady_after: float = 60.0,
) -> dict:
    """``--annotators`` students for ``duration`` s; their figures and the write counts."""
    before = stored_versions(setup["project"])
    submitted_before = counted_once(setup["project"])["submitted_rows"]
    started = time.monotonic()
    stop_at = started + duration
    people = [
        Annotator(
            port,
            token,
            setup,
            started,
            stop_at,
            interval,
            seed=i,
            ramp=ramp,
            submit_after=submit_after,
        )
        for i, token in enumerate(setup["tokens"])
    ]
    stop = threading.Event()
    meter = CpuMeter()
    sampler = LoadSampler(stop, meter)
    sampler.start()
    for p in people:
        p.start()
    for p in people:
        p.join(duration + 120)
    stop.set()
    sampler.join(5)
    cores = meter.cores()
    saves = [s for p in people for s in p.saves]
    nexts = [s for p in people for s in p.next_region]
    submits = [s for p in people for s in p.submits]
    tiles = [s for p in people for s in p.tiles]
    errors = [e for p in people for e in p.errors]
    acked = sum(p.acked for p in people)
    acked_submits = sum(p.acked_submits for p in people)
    stored = stored_versions(setup["project"]) - before
    result = {
        "annotators": len(people),
        "duration_s": duration,
        "interval_s": interval,
        "saves": len(saves),
        "save_p50_ms": _pct([s for _, s in saves], 0.5),
        "save_p95_ms": _pct([s for _, s in saves], 0.95),
        "next_region_p50_ms": _pct([s for _, s in nexts], 0.5),
        "next_region_p95_ms": _pct([s for _, s in nexts], 0.95),
        "tiles": len(tiles),
        "tile_p50_ms": _pct(tiles, 0.5),
        "tile_p95_ms": _pct(tiles, 0.95),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:10],
        "acked_saves": acked,
        # Saves and submits both bump a draft's version by one: acked writes == stored versions.
        "stored_versions": stored,
        "lost_saves": acked + acked_submits - stored,
        "load_average_1min_every_10s": sampler.samples,
        "cpu_cores_used": cores,
        **(
            {
                "lock_waits": {
                    "note": "PostgreSQL backends seen waiting on a lock, sampled once a second",
                    "most_at_once": sampler.most_waiting,
                    "by_statement": dict(
                        sorted(sampler.lock_waits.items(), key=lambda kv: -kv[1])[:8]
                    ),
                }
            }
            if _postgres()
            else {}
        ),
    }
    if submit_after is None and ramp is None:
        return result
    # The start-up burst: each student's first next-region, all within the ramp.
    burst = [p.next_region[0] for p in people if p.next_region]
    result.update(
        ramp_s=interval if ramp is None else ramp,
        submit_after_saves=list(submit_after) if submit_after else None,
        steady_after_s=steady_after,
        burst=_figures(burst, "next_region"),
        steady={
            **_figures([s for s in nexts if s[0] >= steady_after], "next_region"),
            **_figures([s for s in saves if s[0] >= steady_after], "save"),
            **_figures([s for s in submits if s[0] >= steady_after], "submit"),
        },
        submits=_figures(submits, "submit"),
        acked_submits=acked_submits,
        nothing_left=sum(p.nothing_left for p in people),
    )
    drained = time.monotonic() + 90
    while merges_pending(setup["project"]) and time.monotonic() < drained:
        time.sleep(1)
    checks = counted_once(setup["project"])
    checks["submitted_rows"] -= submitted_before
    checks["merges_pending_after_drain"] = merges_pending(setup["project"])
    checks["acked_submits_minus_submitted_rows"] = acked_submits - checks["submitted_rows"]
    result["counted_once"] = checks
    return result


def merge_phase(
    port: int, setup: dict, merges: dict, args: argparse.Namespace, train: bool
) -> dict:
    """One phase with merges queued beside the annotators, with or without training."""
    reset_merges(merges["project"])
    training = start_training(args.duration) if train else None
    feeder = MergeFeeder(merges["regions"], args.merge_interval, time.monotonic() + args.duration)
    feeder.start()
    result = run_phase(
        port,
        setup,
        args.duration,
        args.interval,
        ramp=args.ramp,
        submit_after=tuple(args.submit_after) if args.submit_after else None,
        steady_after=args.steady_after,
    )
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


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": load,
        "uptime_at_start": _uptime(),
    }


def _server_line() -> str:
    database = "PostgreSQL" if _postgres() else "SQLite"
    broker = "Redis" if BACKENDS.get("CELERY_BROKER_URL", "").startswith("redis") else "filesystem"
    return f"gunicorn 2 workers x 4 threads, {database}, one Celery worker ({broker} broker)"


def class_table(out: dict) -> str:
    """The class run as a Markdown table: the figures, their targets, and the checks."""
    run = out["merges"] if "merges" in out else out
    steady, burst, checks = run["steady"], run["burst"], run["counted_once"]
    after = "the first minute" if run["steady_after_s"] == 60 else f"{run['steady_after_s']:g} s"
    rows = [
        (
            f"next-region p95 after {after}",
            f"{steady['next_region_p95_ms']} ms",
            f"< 300 ms ({steady['next_region_count']} calls)",
        ),
        (
            f"save p95 after {after}",
            f"{steady['save_p95_ms']} ms",
            f"< 300 ms ({steady['save_count']} saves)",
        ),
        (
            "start-up burst: first next-region p50 / p95 / max",
            f"{burst['next_region_p50_ms']} / {burst['next_region_p95_ms']} / "
            f"{burst['next_region_max_ms']} ms",
            f"stated ({burst['next_region_count']} calls over {run['ramp_s']} s)",
        ),
        (f"next-region p50 after {after}", f"{steady['next_region_p50_ms']} ms", ""),
        (f"save p50 after {after}", f"{steady['save_p50_ms']} ms", ""),
        (f"submit p95 after {after}", f"{steady['submit_p95_ms']} ms", ""),
        ("tile p95 (whole run)", f"{run['tile_p95_ms']} ms", ""),
        ("errors", str(run["errors"]), "0"),
        ("acked saves + submits - stored versions", str(run["lost_saves"]), "0"),
        ("acked submits - submitted rows", str(checks["acked_submits_minus_submitted_rows"]), "0"),
        ("duplicate (region, annotator) slots", str(checks["duplicate_slots"]), "0"),
        (
            "regions over k + extra active/submitted slots",
            str(checks["regions_over_k_plus_extra"]),
            "0",
        ),
        (
            "consensus runs using a submission or annotator twice",
            str(checks["consensus_runs_with_a_repeated_input"]),
            "0",
        ),
        (
            "merges queued / done (merge project)",
            f"{run.get('merges_queued', '-')} / {run.get('merges_done', '-')}",
            "",
        ),
        ("consensus runs of the class's own regions", str(checks["consensus_runs"]), ""),
        ("next-region answered 204 (nothing left)", str(run["nothing_left"]), "0"),
    ]
    lines = [
        f"# Annotation load, {run['annotators']} annotators ({out['date']})",
        "",
        f"{out['server']}; {out['machine']['cpus']} CPUs ({out['machine']['platform']}); "
        f"{run['duration_s']:.0f} s of load, saves every {run['interval_s']} s, submit after "
        f"{run['submit_after_saves']} saves.",
        "",
        f"`uptime` at start: {out['machine']['uptime_at_start']}",
        f"`uptime` at end: {out.get('uptime_at_end', '')}",
        f"1-min load average every 10 s: {run['load_average_1min_every_10s']}",
        f"CPU cores used during the load: {run.get('cpu_cores_used', {})}",
        "",
        "| figure | measured | target |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]
    if "lock_waits" in run:
        waits = run["lock_waits"]
        lines += [
            "",
            f"PostgreSQL lock waits, sampled once a second: at most {waits['most_at_once']} "
            "backends waiting at once; backend-seconds by statement:",
            "",
            *[f"- {count}: `{name}`" for name, count in waits["by_statement"].items()],
        ]
    return "\n".join(lines) + "\n"


def _clear_prefix() -> None:
    """Remove this run's keys from a shared Redis (only those under its own prefix)."""
    prefix = BACKENDS.get("CELERY_REDIS_KEY_PREFIX")
    url = BACKENDS.get("CELERY_BROKER_URL", "")
    if not prefix or not url.startswith("redis://"):
        return
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument(
        "--ramp", type=float, help="spread first next-region calls over this many s (interval)"
    )
    parser.add_argument(
        "--submit-after",
        type=int,
        nargs=2,
        metavar=("LO", "HI"),
        help="submit and ask for the next region after LO..HI saves (default: never submit)",
    )
    parser.add_argument("--steady-after", type=float, default=60.0)
    parser.add_argument(
        "--merges", action="store_true", help="one phase with merges queued beside it"
    )
    parser.add_argument(
        "--training-comparison",
        action="store_true",
        help="two phases with merges running: without and with a nice-19 training run",
    )
    parser.add_argument("--merge-interval", type=float, default=2.0)
    parser.add_argument("--database-url", help="e.g. postgres://postgres@127.0.0.1:5432/hc_load")
    parser.add_argument("--broker-url", help="e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--key-prefix", help="Redis key prefix of this run (removed at the end)")
    parser.add_argument("--note", default="", help="stored in the JSON (e.g. machine sharing)")
    parser.add_argument("--background-training", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.background_training is not None:
        background_training(args.background_training)
        return
    for name, value in (
        ("DATABASE_URL", args.database_url),
        ("CELERY_BROKER_URL", args.broker_url),
        ("CELERY_REDIS_KEY_PREFIX", args.key_prefix),
    ):
        if value:
            BACKENDS[name] = value
    class_run = bool(args.submit_after or args.ramp is not None)
    machine = _machine()
    regions = 0
    if args.submit_after:
        # Each student opens a region per submit; k of them share one (with 30 % to spare).
        per_student = 1 + args.duration / (args.interval * sum(args.submit_after) / 2)
        regions = math.ceil(1.3 * args.annotators * per_student / 3) + 5
    setup = prepare(args.annotators, regions)
    merges = None
    if args.training_comparison or args.merges:
        merges = prepare_merges(math.ceil(args.duration / args.merge_interval) + 2)
    _clear_prefix()
    worker = _start_worker()
    server = Server(env=_env())
    PROCESSES.update({"web (gunicorn)": server.process.pid, "celery worker": worker.pid})
    try:
        _warm_up(server.port, setup["tokens"][0])
        if merges is None:
            result = run_phase(
                server.port,
                setup,
                args.duration,
                args.interval,
                ramp=args.ramp,
                submit_after=tuple(args.submit_after) if args.submit_after else None,
                steady_after=args.steady_after,
            )
        elif args.training_comparison:
            result = {
                "merges": merge_phase(server.port, setup, merges, args, train=False),
                "merges_and_training": merge_phase(server.port, setup, merges, args, train=True),
            }
        else:
            result = {"merges": merge_phase(server.port, setup, merges, args, train=False)}
    finally:
        server.stop()
        worker.terminate()
        worker.wait(30)
        _clear_prefix()
    print(json.dumps(result, indent=1))
    now = dt.datetime.now(dt.UTC)
    out = {
        "date": now.isoformat(timespec="seconds"),
        "machine": machine,
        "uptime_at_end": _uptime(),
        "server": _server_line(),
        "regions_open_at_start": setup["regions"],
        **({"note": args.note} if args.note else {}),
        **result,
    }
    if args.training_comparison:
        out["training"] = (
            "learning.training.train on a synthetic 96-patch cache (128 px, U-Net depth 3, "
            "width 16, CPU, all cores) in a subprocess under nice -n 19"
        )
        out["merge_interval_s"] = args.merge_interval
        name = f"annotate-load-training-{now.date().isoformat()}"
    elif class_run:
        if merges is not None:
            out["merge_interval_s"] = args.merge_interval
        kind = "postgres" if _postgres() else "class"
        name = f"annotate-load-{kind}-{now.date().isoformat()}"
    else:
        name = f"annotate-load-{now.date().isoformat()}"
    target = REPO / "bench" / "results" / f"{name}.json"
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {target.relative_to(REPO)}")
    if class_run:
        table = class_table(out)
        (REPO / "bench" / "results" / f"{name}.md").write_text(table)
        print(table)


if __name__ == "__main__":
    main()
