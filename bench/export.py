"""Research export benchmark: this project's builder against the obvious approach, same run.

Both export the same accepted regions (synthetic 4096 x 4096 slides at 0.5 um/px, the glands of
their ground truth outlined by three annotators with a pixel or two of jitter, merged by the
real merge service) as 256-px patches every 48 px:

- **ours**: ``learning.exports.services.export_build``: each region read once at the export's
  resolution and cut into patches; PNG (zlib level 1) images and indexed masks, soft labels,
  raw masks, COCO, GeoJSON, manifest and checksums streamed into a zip on disk;
- **naive**: ``read_region`` per patch (OpenSlide), Pillow's default PNG for the image and the
  mask, each written into a ``zipfile`` held in a ``BytesIO``, saved at the end: images and
  masks only, none of the other files.

Each build runs in its own process, which reports its wall time and peak RSS
(``getrusage``); both run at N and at 4N regions to show how memory grows with the number
of patches. The database, slides and merged regions are cached under ``var/bench-export``.

    python bench/export.py [--quick]

Prints a table and writes ``bench/results/export-<date>.json`` (``-quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BENCH_VAR = REPO / "var" / "bench-export"
SIDE = 4096  # slide side, level-0 px
REGION = 1024  # region side, level-0 px = export px (0.5 um/px)
JITTER = [(0.0, 0.0), (2.0, 0.0), (0.0, -2.0)]  # each annotator's offset of the true outlines


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HISTOCROWD_VAR_DIR=str(BENCH_VAR),
        DJANGO_SETTINGS_MODULE="config.settings",
        SLIDE_ROOTS=str(BENCH_VAR / "slides"),
        CELERY_BROKER_URL="filesystem://",
        TILE_PREBUILD_MAX_TILES="0",
        LOG_LEVEL="WARNING",
    )
    env.pop("DATABASE_URL", None)
    return env


def _glands(geojson: Path) -> list[Any]:
    import shapely
    from shapely.geometry import shape

    data = json.loads(geojson.read_text())
    polys = [
        shape(f["geometry"])
        for f in data["features"]
        if f["properties"]["classification"]["name"] == "gland"
    ]
    return shapely.STRtree(polys), polys


def _outline(reg: Any, annotators: list, gland: Any, tree: Any, polys: list) -> None:
    """The true glands inside the region, as each annotator's shapes (jittered), submitted."""
    import datetime as dtm

    from django.utils import timezone
    from shapely.affinity import translate
    from shapely.geometry import box, mapping

    from annotation.models import Assignment
    from annotation.services.submissions import (
        ShapeInput,
        submission_save_draft,
        submission_submit,
    )

    frame = box(reg.x, reg.y, reg.x + reg.width, reg.y + reg.height)
    inside = [polys[i] for i in tree.query(frame, predicate="intersects")]
    for user, (dx, dy) in zip(annotators, JITTER, strict=True):
        assignment, _ = Assignment.objects.get_or_create(
            region=reg,
            annotator=user,
            defaults={"expires_at": timezone.now() + dtm.timedelta(days=1)},
        )
        shapes = [
            ShapeInput(gland.pk, mapping(translate(p, dx, dy).intersection(frame))) for p in inside
        ]
        shapes = [s for s in shapes if s.geometry["type"] in ("Polygon", "MultiPolygon")]
        version = 1
        if shapes:
            submission_save_draft(assignment=assignment, expected_version=1, shapes=shapes)
            version = 2
        submission_submit(
            assignment=assignment,
            expected_version=version,
            outcome="shapes" if shapes else "nothing",
            user=user,
        )


def prepare(positions: list[tuple[int, int]], n_small: int) -> dict[str, int]:
    """Migrate, write and ingest two slides, and build the two projects (cached)."""
    os.environ.update(_env())
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.models import LabelClass, Membership, Project, Region
    from annotation.selectors_consensus import accepted_regions
    from annotation.services.merge import merge_region
    from slides.services import slide_ingest, slide_register
    from slides.synthetic import SyntheticSpec, write_synthetic_slide

    call_command("migrate", verbosity=0)
    slides = []
    for seed in (1, 2):
        folder = BENCH_VAR / "slides"
        path = folder / f"bench-{seed}.tiff"
        if not path.exists():
            print(f"writing synthetic slide {path.name} ...", flush=True)
            write_synthetic_slide(folder, f"bench-{seed}", SyntheticSpec(SIDE, SIDE, seed=seed))
        slides.append((path, _glands(folder / f"bench-{seed}.geojson")))
    users = [
        get_user_model().objects.get_or_create(username=f"bench-annotator-{i}")[0] for i in range(3)
    ]
    found = {}
    for name, per_slide in (("small", n_small), ("large", len(positions))):
        slug = f"export-bench-{name}-{per_slide}"
        project = Project.objects.filter(slug=slug).first()
        if project is not None and len(accepted_regions(project)) == 2 * per_slide:
            found[name] = project.pk
            continue
        Project.objects.filter(slug=slug).delete()
        print(f"outlining and merging {2 * per_slide} regions for {slug} ...", flush=True)
        project = Project.objects.create(
            name=slug, slug=slug, target_mpp=0.5, redundancy_k=4, consensus_method="staple"
        )
        for user in users:
            Membership.objects.create(project=project, user=user, role="annotator")
        LabelClass.objects.create(project=project, name="none", is_background=True)
        gland = LabelClass.objects.create(project=project, name="gland", order=1)
        regions = []
        for path, (tree, polys) in slides:
            # A slide row belongs to one project: each bench project registers the file itself.
            slide, _ = slide_register(path=str(path), within=project.slides.all())
            if slide.status != "ready":
                slide_ingest(slide_id=slide.pk)
                slide.refresh_from_db()
            project.slides.add(slide)
            for x, y in positions[:per_slide]:
                reg = Region.objects.create(
                    project=project,
                    slide=slide,
                    x=x,
                    y=y,
                    width=REGION,
                    height=REGION,
                    origin="seeded",
                )
                _outline(reg, users, gland, tree, polys)
                regions.append(reg)
        Project.objects.filter(pk=project.pk).update(redundancy_k=3)
        statuses = [merge_region(region_id=r.pk).status for r in regions]
        if set(statuses) != {"accepted"}:
            raise SystemExit(f"not every region was accepted: {statuses}")
        found[name] = project.pk
    return found


OURS = """
import json, resource, sys, time
import django
django.setup()
from learning.exports.services import export_build
from learning.models import TrainingExport
config = json.loads(sys.argv[2])
export = TrainingExport.objects.create(project_id=int(sys.argv[1]), config=config)
usage = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
export = export_build(export_id=export.pk)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
assert export.status == "ready", export.failed_reason
print(json.dumps({
    "patches": sum(s["patches"] for s in export.counts.values()),
    "seconds": seconds,
    "cpu_seconds": cpu,
    "bytes": export.file_size,
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""

NAIVE = """
import io, json, resource, sys, time, zipfile
import django
django.setup()
import numpy as np
import openslide
from PIL import Image
from annotation.models import Project
from annotation.selectors_consensus import accepted_regions
config = json.loads(sys.argv[2])
size, stride = config["patch_size"], config["stride"]
out = sys.argv[3]
project = Project.objects.get(pk=int(sys.argv[1]))
usage = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
buffer = io.BytesIO()
archive = zipfile.ZipFile(buffer, "w")
patches = 0
handles = {}
for accepted in accepted_regions(project):
    region = accepted.region
    labels = accepted.labels.astype(np.uint8)
    labels[accepted.contested] = 255
    slide = handles.setdefault(region.slide.path, openslide.OpenSlide(region.slide.path))
    height, width = labels.shape
    for row in range(0, height - size + 1, stride):
        for col in range(0, width - size + 1, stride):
            tile = slide.read_region((region.x + col, region.y + row), 0, (size, size))
            image = io.BytesIO()
            tile.convert("RGB").save(image, "PNG")
            mask = io.BytesIO()
            Image.fromarray(labels[row:row + size, col:col + size]).save(mask, "PNG")
            stem = f"{region.pk}/y{row:05d}_x{col:05d}"
            archive.writestr(f"images/{stem}.png", image.getvalue())
            archive.writestr(f"masks/{stem}.png", mask.getvalue())
            patches += 1
archive.close()
with open(out, "wb") as handle:
    handle.write(buffer.getvalue())
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
print(json.dumps({
    "patches": patches,
    "seconds": seconds,
    "cpu_seconds": cpu,
    "bytes": len(buffer.getvalue()),
    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def run_child(code: str, project_id: int, config: dict[str, Any]) -> dict[str, Any]:
    out = BENCH_VAR / "naive.zip"
    done = subprocess.run(
        [sys.executable, "-c", code, str(project_id), json.dumps(config), str(out)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        timeout=1800,
    )
    if done.returncode:
        raise SystemExit(done.stderr.decode()[-3000:])
    out.unlink(missing_ok=True)
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    result["patches_per_s"] = result["patches"] / result["seconds"]
    result["patches_per_cpu_s"] = result["patches"] / result["cpu_seconds"]
    result["peak_rss_mib"] = result["peak_rss_kib"] / 1024
    return result


def machine_info() -> dict[str, Any]:
    import numpy
    import openslide
    import PIL

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "openslide": openslide.__library_version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer regions, for a smoke run")
    args = parser.parse_args()
    grid = [(512 + 1024 * i, 512 + 1024 * j) for j in range(3) for i in range(3)]
    if args.quick:
        positions, n_small, config = grid[:2], 1, {"patch_size": 256, "stride": 128}
    else:
        positions, n_small, config = grid[:6], 2, {"patch_size": 256, "stride": 48}
    BENCH_VAR.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    projects = prepare(positions, n_small)
    rows = []
    for size in ("small", "large"):
        for name, code in (("ours", OURS), ("naive", NAIVE)):
            print(f"building {size} with {name} ...", flush=True)
            result = run_child(code, projects[size], config)
            rows.append({"approach": name, "size": size, **result})
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"date {dt.date.today().isoformat()}; patches {config['patch_size']} px every "
        f"{config['stride']} px"
    )
    header = (
        f"{'approach':<8} {'size':<6} {'patches':>8} {'seconds':>8} {'patches/s':>10} "
        f"{'per CPU s':>10} "
        f"{'peak RSS MiB':>13} {'archive MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['approach']:<8} {r['size']:<6} {r['patches']:>8} {r['seconds']:>8.1f} "
            f"{r['patches_per_s']:>10.1f} {r['patches_per_cpu_s']:>10.1f} "
            f"{r['peak_rss_mib']:>13.0f} {r['bytes'] / 1e6:>11.1f}"
        )
    by = {(r["approach"], r["size"]): r for r in rows}
    summary = {
        "speedup_large": by["ours", "large"]["patches_per_s"]
        / by["naive", "large"]["patches_per_s"],
        "speedup_small": by["ours", "small"]["patches_per_s"]
        / by["naive", "small"]["patches_per_s"],
        "cpu_speedup_large": by["ours", "large"]["patches_per_cpu_s"]
        / by["naive", "large"]["patches_per_cpu_s"],
        "rss_growth_mib_ours": by["ours", "large"]["peak_rss_mib"]
        - by["ours", "small"]["peak_rss_mib"],
        "rss_growth_mib_naive": by["naive", "large"]["peak_rss_mib"]
        - by["naive", "small"]["peak_rss_mib"],
    }
    print(
        f"\nours / naive patches/s: {summary['speedup_large']:.1f}x (4N), "
        f"{summary['speedup_small']:.1f}x (N), per CPU second "
        f"{summary['cpu_speedup_large']:.1f}x (4N); peak RSS growth N -> 4N: ours "
        f"{summary['rss_growth_mib_ours']:+.0f} MiB, "
        f"naive {summary['rss_growth_mib_naive']:+.0f} MiB"
    )
    today = dt.date.today().isoformat()
    suffix = "-quick" if args.quick else ""
    out = REPO / "bench" / "results" / f"export-{today}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "export",
        "date": today,
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "load_average_1_5_15": {"start": load_start, "end": os.getloadavg()},
        "config": config,
        "regions": {"small": 2 * n_small, "large": 2 * len(positions), "side_px": REGION},
        "rows": rows,
        "summary": summary,
        "notes": __doc__,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
