"""Benchmark: annotation.consensus against SimpleITK and crowd-kit.

Run from the repository root, in the project's virtual environment:

    python bench/consensus.py            # 5 raters x 1024^2 and 9 raters x 2048^2, 2 and 4 classes
    python bench/consensus.py --quick    # the same shapes at 256^2 and 512^2 (a smoke run)

It prints a table (milliseconds, peer/ours ratio, differing pixels) and writes
``bench/results/consensus-<YYYY-MM-DD>.json`` (``...-quick.json`` with ``--quick``) with the
machine it ran on. The full run takes a few minutes on 2 cores and about 3 GB of memory
(crowd-kit's SegmentationEM holds several float64 copies of the 9 x 2048^2 stack).

Inputs are synthetic but structured like annotation: discs ("cells") of classes 1..C-1 on
background; every rater moves and resizes each disc by a pixel or two, misses some, relabels
a few and adds a few of their own. The "patterns" column is the number of distinct per-pixel
vote patterns, which is what this project's methods iterate over.

Pairs (ours against peer, same inputs, same start):
- binary STAPLE against SimpleITK's STAPLEImageFilter (foreground = class 1), whose output is
  the foreground posterior image: ours is timed including that image (``class_posterior(1)``,
  float64) besides its labels and rates;
- multi-label STAPLE (``init="itk"``) against SimpleITK's MultiLabelSTAPLEImageFilter;
- majority vote against crowd-kit's SegmentationMajorityVote (binary; ``tie=1``, crowd-kit's
  tie rule) and SimpleITK's LabelVotingImageFilter (4 classes; ``tie=C``, ITK's undecided);
- Dawid-Skene on item labels (one label per rater per item, items drawn from the image)
  against crowd-kit's DawidSkene, both run for the same fixed number of iterations;
- Dawid-Skene on pixels against crowd-kit's SegmentationEM (binary): a *different model*
  (one coin per rater against full confusion matrices), listed for speed; its differing
  pixels are model differences, not errors.

SimpleITK runs single-threaded (``SetGlobalDefaultNumberOfThreads(1)`` and
``SetNumberOfThreads(1)``) and with its default threads; this project's code is single-
threaded numpy. Times are wall-clock, the best of 5 runs for ours and of 2 for the peers
(3 and 2 with --quick); the JSON records the load average, as the machine may be shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import crowdkit  # noqa: E402
import pandas as pd  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from crowdkit.aggregation import (  # noqa: E402
    DawidSkene,
    SegmentationEM,
    SegmentationMajorityVote,
)

from annotation import consensus  # noqa: E402
from annotation.vote_patterns import compress  # noqa: E402

ITK_MULTILABEL_TOL = float(np.float32(1e-5))  # SimpleITK's float default, as a double
DS_ITERATIONS = 20


@dataclass(frozen=True)
class Case:
    """One benchmark input: R raters over a size x size image with C classes."""

    raters: int
    size: int
    classes: int
    items: int  # item labels drawn for the Dawid-Skene pair

    @property
    def name(self) -> str:
        kind = "binary" if self.classes == 2 else f"{self.classes} classes"
        return f"{self.raters}x{self.size}^2 {kind}"


@dataclass(frozen=True)
class Row:
    """One ours-against-peer measurement."""

    case: str
    method: str
    peer: str
    peer_threads: str
    ours_ms: float
    peer_ms: float
    ratio: float
    differing: int
    compared: int
    max_abs_diff: float | None
    note: str = ""


def make_masks(rng: np.random.Generator, case: Case) -> np.ndarray:
    """``(R, size, size)`` uint8 structured label masks (see the module docstring)."""
    size, n_classes = case.size, case.classes
    mean_radius = size / 40
    count = int(0.3 * size * size / (np.pi * mean_radius**2))
    centres = rng.uniform(0, size, (count, 2))
    radii = rng.uniform(0.5, 1.5, count) * mean_radius
    labels = rng.integers(1, n_classes, count)
    masks = np.zeros((case.raters, size, size), dtype=np.uint8)
    for rater in range(case.raters):
        kept = rng.random(count) > 0.05
        extra = max(1, count // 30)
        disc_centres = np.concatenate(
            [centres[kept] + rng.normal(0, 1.5, (kept.sum(), 2)), rng.uniform(0, size, (extra, 2))]
        )
        disc_radii = np.concatenate(
            [
                radii[kept] + rng.normal(0, 1.5, kept.sum()),
                rng.uniform(0.5, 1.5, extra) * mean_radius,
            ]
        )
        relabel = rng.random(count) < 0.05
        disc_labels = np.where(relabel, rng.integers(1, n_classes, count), labels)
        disc_labels = np.concatenate([disc_labels[kept], rng.integers(1, n_classes, extra)])
        for (cy, cx), radius, label in zip(disc_centres, disc_radii, disc_labels, strict=True):
            y0, y1 = max(int(cy - radius), 0), min(int(cy + radius) + 2, size)
            x0, x1 = max(int(cx - radius), 0), min(int(cx + radius) + 2, size)
            if y0 >= y1 or x0 >= x1:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius
            masks[rater, y0:y1, x0:x1][inside] = label
    masks[0, 0, 0] = n_classes - 1  # every class present, as ITK infers C from the data
    return masks


def best_ms(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls in milliseconds, and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best * 1e3, result


DEFAULT_THREADS = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()


def sitk_threads(count: int | None) -> None:
    """Set SimpleITK's global default thread count (None: restore the machine default).

    The global default matters as well as the filter's own setting: MultiLabelSTAPLE builds
    an internal LabelVoting filter that takes the global default.
    """
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(count or DEFAULT_THREADS)


def bench_case(case: Case, masks: np.ndarray, repeats: int, peer_repeats: int) -> list[Row]:
    rows: list[Row] = []
    images = [sitk.GetImageFromArray(np.ascontiguousarray(m)) for m in masks]
    pixels = int(masks[0].size)
    thread_settings = [("1", 1), (str(DEFAULT_THREADS), None)]

    # Binary STAPLE: SimpleITK returns the foreground posterior image; ours builds it too.
    def ours_staple() -> tuple[consensus.ConsensusResult, np.ndarray]:
        result = consensus.staple(masks, foreground=1)
        return result, result.class_posterior(1)

    ours_ms, (ours, foreground) = best_ms(ours_staple, repeats)
    for label, threads in thread_settings:
        sitk_threads(threads)
        peer = sitk.STAPLEImageFilter()
        peer.SetForegroundValue(1)
        peer.SetNumberOfThreads(threads or DEFAULT_THREADS)
        peer_ms, image = best_ms(lambda p=peer: p.Execute(images), peer_repeats)
        posterior = sitk.GetArrayFromImage(image)
        rows.append(
            Row(
                case.name,
                "STAPLE (binary)",
                "SimpleITK STAPLEImageFilter",
                label,
                ours_ms,
                peer_ms,
                peer_ms / ours_ms,
                int(((posterior > 0.5) != (ours.labels == 1)).sum()),
                pixels,
                float(
                    max(
                        np.abs(foreground - posterior).max(),
                        np.abs(ours.raters.sensitivity - peer.GetSensitivity()).max(),
                        np.abs(ours.raters.specificity - peer.GetSpecificity()).max(),
                    )
                ),
                "posterior, sensitivity, specificity",
            )
        )

    # Multi-label STAPLE, started as ITK starts.
    ours_ms, ours = best_ms(
        lambda: consensus.staple_multiclass(masks, init="itk", tol=ITK_MULTILABEL_TOL), repeats
    )
    n_classes = ours.n_classes
    for label, threads in thread_settings:
        sitk_threads(threads)
        peer = sitk.MultiLabelSTAPLEImageFilter()
        peer.SetNumberOfThreads(threads or DEFAULT_THREADS)
        peer_ms, image = best_ms(lambda p=peer: p.Execute(images), peer_repeats)
        matrices = np.stack(
            [
                np.reshape(peer.GetConfusionMatrix(r), (n_classes + 1, n_classes))[:n_classes]
                for r in range(case.raters)
            ]
        )
        evidence = ours.raters.support[:, None, :] > 0
        ours_matrices = ours.raters.confusion.transpose(0, 2, 1)
        rows.append(
            Row(
                case.name,
                "multi-label STAPLE",
                "SimpleITK MultiLabelSTAPLEImageFilter",
                label,
                ours_ms,
                peer_ms,
                peer_ms / ours_ms,
                int((sitk.GetArrayFromImage(image) != ours.labels).sum()),
                pixels,
                float(np.abs(np.where(evidence, ours_matrices - matrices, 0.0)).max()),
                "confusion matrices",
            )
        )
    sitk_threads(None)

    # Majority vote.
    if case.classes == 2:
        frame = pd.DataFrame(
            {
                "task": 0,
                "worker": range(case.raters),
                "segmentation": [m.astype(bool) for m in masks],
            }
        )
        ours_ms, ours = best_ms(lambda: consensus.majority_vote(masks, tie=1), repeats)
        peer_ms, peer_out = best_ms(
            lambda: SegmentationMajorityVote().fit_predict(frame).iloc[0], peer_repeats
        )
        rows.append(
            Row(
                case.name,
                "majority vote",
                "crowd-kit SegmentationMajorityVote",
                "1",
                ours_ms,
                peer_ms,
                peer_ms / ours_ms,
                int(((ours.labels == 1) != peer_out).sum()),
                pixels,
                None,
                "tie=1 (crowd-kit sends ties to foreground)",
            )
        )
    else:
        ours_ms, ours = best_ms(lambda: consensus.majority_vote(masks, tie=case.classes), repeats)
        for label, threads in thread_settings:
            sitk_threads(threads)
            peer = sitk.LabelVotingImageFilter()
            peer.SetNumberOfThreads(threads or DEFAULT_THREADS)
            peer_ms, image = best_ms(lambda p=peer: p.Execute(images), peer_repeats)
            rows.append(
                Row(
                    case.name,
                    "majority vote",
                    "SimpleITK LabelVotingImageFilter",
                    label,
                    ours_ms,
                    peer_ms,
                    peer_ms / ours_ms,
                    int((sitk.GetArrayFromImage(image) != ours.labels).sum()),
                    pixels,
                    None,
                    "tie=C (ITK's undecided label); crowd-kit has no multi-class pixel MV",
                )
            )
        sitk_threads(None)

    # Dawid-Skene on item labels drawn from the image (one label per rater per item).
    rng = np.random.default_rng(case.raters * 1000 + case.classes)
    picks = rng.integers(0, pixels, case.items)
    items = masks.reshape(case.raters, -1)[:, picks].astype(np.int16)
    workers, tasks = np.nonzero(items >= 0)
    long = pd.DataFrame({"task": tasks, "worker": workers, "label": items[workers, tasks]})
    ours_ms, ours = best_ms(
        lambda: consensus.dawid_skene(items, max_iter=DS_ITERATIONS, tol=0.0), repeats
    )
    peer_ms, peer = best_ms(
        lambda: DawidSkene(n_iter=DS_ITERATIONS, tol=-np.inf).fit(long), peer_repeats
    )
    probas = np.zeros((case.items, ours.n_classes))
    for column in peer.probas_.columns:
        probas[peer.probas_.index.to_numpy(), int(column)] = peer.probas_[column].to_numpy()
    rows.append(
        Row(
            case.name,
            "Dawid-Skene (items)",
            "crowd-kit DawidSkene",
            "1",
            ours_ms,
            peer_ms,
            peer_ms / ours_ms,
            int((ours.labels != peer.labels_.sort_index().to_numpy()).sum()),
            case.items,
            float(np.abs(ours.posterior.T - probas).max()),
            f"{case.items} items, {DS_ITERATIONS} iterations each, probabilities",
        )
    )

    # Dawid-Skene on pixels against crowd-kit's per-pixel EM (a different model).
    if case.classes == 2:
        frame = pd.DataFrame(
            {
                "task": 0,
                "worker": range(case.raters),
                "segmentation": [m.astype(bool) for m in masks],
            }
        )
        ours_ms, ours = best_ms(lambda: consensus.dawid_skene(masks), repeats)
        peer_ms, peer_out = best_ms(lambda: SegmentationEM().fit_predict(frame).iloc[0], 1)
        rows.append(
            Row(
                case.name,
                "Dawid-Skene (pixels)",
                "crowd-kit SegmentationEM",
                "1",
                ours_ms,
                peer_ms,
                peer_ms / ours_ms,
                int(((ours.labels == 1) != peer_out).sum()),
                pixels,
                None,
                "different model: one coin per rater vs full confusion; speed only",
            )
        )
    return rows


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "simpleitk": sitk.Version.VersionString(),
        "crowdkit": getattr(crowdkit, "__version__", "unknown"),
        "simpleitk_default_threads": DEFAULT_THREADS,
    }


def print_table(rows: list[Row], patterns: dict[str, int]) -> None:
    header = (
        f"{'case':<20} {'patterns':>8}  {'method':<21} {'peer':<38} {'thr':>3} "
        f"{'ours ms':>9} {'peer ms':>10} {'ratio':>7} {'differing':>14} {'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        diff = "-" if row.max_abs_diff is None else f"{row.max_abs_diff:.1e}"
        print(
            f"{row.case:<20} {patterns[row.case]:>8}  {row.method:<21} {row.peer:<38} "
            f"{row.peer_threads:>3} {row.ours_ms:>9.1f} {row.peer_ms:>10.1f} "
            f"{row.ratio:>6.0f}x {f'{row.differing}/{row.compared}':>14} {diff:>10}"
        )
    notes = dict.fromkeys((row.method, row.peer, row.note) for row in rows if row.note)
    for method, peer, note in notes:
        print(f"  {method} vs {peer}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small images, for a smoke run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.quick:
        cases = [
            Case(5, 256, 2, 2000),
            Case(5, 256, 4, 2000),
            Case(9, 512, 2, 2000),
            Case(9, 512, 4, 2000),
        ]
        repeats, peer_repeats = 3, 2
    else:
        cases = [
            Case(5, 1024, 2, 20000),
            Case(5, 1024, 4, 20000),
            Case(9, 2048, 2, 20000),
            Case(9, 2048, 4, 20000),
        ]
        repeats, peer_repeats = 5, 2

    # The machine may be shared: record how busy it was, since times are wall-clock.
    load_start = os.getloadavg()
    rng = np.random.default_rng(args.seed)
    rows: list[Row] = []
    patterns: dict[str, int] = {}
    for case in cases:
        masks = make_masks(rng, case)
        patterns[case.name] = int(compress(masks).counts.shape[0])
        print(f"running {case.name} ({patterns[case.name]} vote patterns) ...", flush=True)
        rows.extend(bench_case(case, masks, repeats, peer_repeats))

    print()
    print_table(rows, patterns)
    today = dt.date.today().isoformat()
    # A smoke run never overwrites the day's full result.
    suffix = "-quick" if args.quick else ""
    out = REPO / "bench" / "results" / f"consensus-{today}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "consensus",
        "date": today,
        "mode": "quick" if args.quick else "full",
        "seed": args.seed,
        "machine": machine_info(),
        "load_average_1_5_15": {"start": load_start, "end": os.getloadavg()},
        "cases": [
            {**asdict(case), "name": case.name, "patterns": patterns[case.name]} for case in cases
        ],
        "rows": [asdict(row) for row in rows],
        "notes": __doc__,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
