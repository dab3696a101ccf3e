"""Benchmark of the learning core: training-step and MC-scoring throughput on one device.

Standalone: needs torch and numpy only (plus this repository's pure torch modules), makes its
own synthetic inputs, no database or broker. Run from the repository root:

    python bench/learning.py                      # GPU: ~50k scored patches, under 3 minutes
    python bench/learning.py --device cpu --small # CPU smoke run (figures marked CPU)

(a) Training: images per second of the whole training step (batch gathered from a patch cache
    on the device, uint8 -> float, augmentation, forward/backward/AdamW) against the model-only
    step (a fixed, ready float batch), same model, same device, same run. Goal: >= 0.8.
(b) Scoring: MC dropout with T samples on 256 px patches: naive (T full forward passes) against
    this project's cheap path (trunk once, thin head T times), with the same dropout masks.
    Goal: >= 4x faster, scores equal.

Prints a table and writes bench/results/learning-<device>-<date>.json.
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
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from learning.augment import AugmentConfig, augment_batch  # noqa: E402
from learning.data import PatchCache, PatchLoader  # noqa: E402
from learning.networks import UNetConfig, build_model  # noqa: E402
from learning.training import TrainConfig, Trainer  # noqa: E402
from learning.uncertainty import score_mc, score_mc_naive  # noqa: E402


def synthetic_cache(n: int, size: int, classes: int, seed: int) -> PatchCache:
    """Random smooth-ish uint8 patches with blocky labels (content does not affect speed)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, size // 8, size // 8, 3), dtype=np.uint8)
    images = coarse.repeat(8, axis=1).repeat(8, axis=2)
    images = images ^ rng.integers(0, 16, images.shape, dtype=np.uint8)
    labels = rng.integers(0, classes, (n, size // 16, size // 16), dtype=np.uint8)
    labels = labels.repeat(16, axis=1).repeat(16, axis=2)
    labels[:, :4] = 255  # a strip of ignored pixels, as in real caches
    return PatchCache.from_arrays(images, labels)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: dict[str, tuple[Callable[[], object], int]],
    device: torch.device,
    rounds: int,
    warmup: int,
    budget_s: float,
) -> dict[str, tuple[float, int]]:
    """Time several workloads in alternating rounds; median seconds per call, and call count.

    Each round runs every workload its number of calls. Alternating (rather than one workload
    after the other) keeps clock boost, thermal drift and neighbours' load on a shared machine
    from favouring whichever ran first. Stops after the round that passes ``budget_s``.
    """
    for fn, _ in fns.values():
        for _ in range(warmup):  # includes torch.compile and cuDNN autotuning
            fn()
    per_call: dict[str, list[float]] = {k: [] for k in fns}
    calls = dict.fromkeys(fns, 0)
    start = time.perf_counter()
    for _ in range(rounds):
        for name, (fn, n) in fns.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            sync(device)
            per_call[name].append((time.perf_counter() - t0) / n)
            calls[name] += n
        if time.perf_counter() - start > budget_s:
            break
    return {k: (float(np.median(v)), calls[k]) for k, v in per_call.items()}


def bench_training(args: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    net = UNetConfig(num_classes=4, depth=4, base_width=args.width, dropout=0.2)
    config = TrainConfig(
        network=net, batch_size=args.batch, epochs=100, device=str(device), compile=compiled
    )
    cache = synthetic_cache(args.cache_patches, args.size, 4, seed=0)
    loader = PatchLoader(cache, args.batch, device)
    trainer = Trainer(config, device, steps_per_epoch=len(loader))
    trainer.class_weights = torch.ones(4, device=device)
    rng = np.random.default_rng(0)
    batches = loader.batches(rng)

    def full_step() -> None:
        nonlocal batches
        try:
            images, labels = next(batches)
        except StopIteration:
            batches = loader.batches(rng)
            images, labels = next(batches)
        trainer.step(*trainer.prepare(images, labels))

    images, labels = next(loader.batches(np.random.default_rng(1)))
    fixed_x, fixed_y = trainer.prepare(images, labels)

    def model_step() -> None:
        trainer.step(fixed_x, fixed_y)

    def augment_only() -> None:
        gen = trainer.augment_generator
        augment_batch(images.float().div_(255.0), labels, AugmentConfig(), gen)

    n = max(1, args.train_steps // args.rounds)
    times = interleaved(
        {"model": (model_step, n), "full": (full_step, n), "augment": (augment_only, n)},
        device,
        args.rounds,
        args.compile_warmup if compiled else 2,
        args.phase_budget,
    )
    (model_s, model_n), (full_s, full_n), (aug_s, _) = times.values()
    b = args.batch
    return {
        "compiled": compiled,
        "model_only_img_s": b / model_s,
        "full_step_img_s": b / full_s,
        "ratio": model_s / full_s,
        "augment_only_img_s": b / aug_s,
        "steps_timed": [model_n, full_n],
    }


def bench_scoring(args: argparse.Namespace, device: torch.device, compiled: bool) -> dict:
    torch.manual_seed(0)
    net = UNetConfig(num_classes=4, depth=4, base_width=args.width, dropout=0.5)
    model = build_model(net).to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trunk = torch.compile(model.forward_features) if compiled else model.forward_features
    cache = synthetic_cache(args.distinct_patches, args.size, 4, seed=1)
    pool = torch.from_numpy(cache.images).to(device)  # resident uint8, cycled through
    amp = device.type == "cuda"
    b, t = args.score_batch, args.samples

    def batch(i: int) -> torch.Tensor:
        idx = torch.arange(i * b, (i + 1) * b, device=device) % len(pool)
        return pool.index_select(0, idx).permute(0, 3, 1, 2).float().div_(255.0)

    def masks(i: int) -> torch.Tensor:
        gen = torch.Generator(device=device).manual_seed(i)
        return model.head.sample_masks(t, b, generator=gen)

    # Same masks, same inputs: the cheap path must reproduce the naive scores.
    x, m = batch(0), masks(0)
    cheap = score_mc(model, x, masks=m, amp=amp, trunk=trunk)
    naive = score_mc_naive(model, x, masks=m, amp=amp, trunk=trunk)
    diff = max(
        float((cheap.entropy - naive.entropy).abs().max()),
        float((cheap.bald - naive.bald).abs().max()),
    )
    areas_equal = bool(torch.equal(cheap.class_pixels, naive.class_pixels))

    def workload(kind: str) -> Callable[[], None]:
        counter = iter(range(10**9))

        def one() -> None:
            i = next(counter)
            x = batch(i)
            with torch.inference_mode():
                if kind == "plain":
                    with torch.autocast("cuda", torch.bfloat16, enabled=amp):
                        model.head(trunk(x)[0])
                elif kind == "cheap":
                    score_mc(model, x, masks=masks(i), amp=amp, trunk=trunk)
                else:
                    score_mc_naive(model, x, masks=masks(i), amp=amp, trunk=trunk)

        return one

    per_round = max(1, args.score_patches // b // args.rounds)
    naive_round = max(1, args.naive_patches // b // args.rounds)
    times = interleaved(
        {
            "plain": (workload("plain"), per_round),
            "cheap": (workload("cheap"), per_round),
            "naive": (workload("naive"), naive_round),
        },
        device,
        args.rounds,
        2,
        args.phase_budget,
    )
    (plain_s, plain_n), (fast_s, fast_n), (slow_s, slow_n) = times.values()
    plain, fast, slow = b / plain_s, b / fast_s, b / slow_s
    plain_n, fast_n, slow_n = plain_n * b, fast_n * b, slow_n * b
    return {
        "compiled": compiled,
        "samples": t,
        "plain_patches_s": plain,
        "cheap_patches_s": fast,
        "naive_patches_s": slow,
        "speedup": fast / slow,
        "patches_timed": {"plain": plain_n, "cheap": fast_n, "naive": slow_n},
        "max_abs_score_diff": diff,
        "class_areas_equal": areas_equal,
    }


def machine(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="CPU-sized run")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    gpu_sizes = {
        "width": 32, "size": 256, "batch": 32, "cache_patches": 1024, "train_steps": 60,
        "score_batch": 256, "samples": 8, "distinct_patches": 1024,
        "score_patches": 49_152, "naive_patches": 8_192, "phase_budget": 30.0,
        "compile_warmup": 3, "rounds": 4,
    }  # fmt: skip
    cpu_sizes = {
        "width": 8, "size": 256, "batch": 8, "cache_patches": 64, "train_steps": 10,
        "score_batch": 16, "samples": 8, "distinct_patches": 64,
        "score_patches": 320, "naive_patches": 64, "phase_budget": 60.0,
        "compile_warmup": 3, "rounds": 4,
    }  # fmt: skip
    for k, v in (cpu_sizes if args.small else gpu_sizes).items():
        setattr(args, k, v)
    if device.type == "cpu":
        # One thread: on a shared 2-core box two oneDNN threads stall on each other (measured
        # up to 10x slower per step), which would make the CPU figures noise.
        torch.set_num_threads(1)
    compile_modes = [False] + ([True] if device.type == "cuda" and not args.no_compile else [])

    started = time.perf_counter()
    training = [bench_training(args, device, c) for c in compile_modes]
    scoring = [bench_scoring(args, device, c) for c in compile_modes]
    label = "CPU" if device.type == "cpu" else "GPU"
    print(f"\nlearning benchmark on {machine(device).get('gpu', platform.processor() or 'cpu')}"
          f" ({label} figures; U-Net base {args.width}, {args.size} px)")  # fmt: skip
    print(f"{'measure':<44}{'eager':>12}{'compiled':>12}")
    rows = [
        ("train: model-only step, img/s", training, "model_only_img_s"),
        ("train: full step (cache+augment), img/s", training, "full_step_img_s"),
        ("train: full / model-only (goal >= 0.8)", training, "ratio"),
        ("train: augmentation alone, img/s", training, "augment_only_img_s"),
        ("score: plain single pass, patches/s", scoring, "plain_patches_s"),
        (f"score: naive T={args.samples}, patches/s", scoring, "naive_patches_s"),
        (f"score: cheap T={args.samples}, patches/s", scoring, "cheap_patches_s"),
        ("score: cheap / naive (goal >= 4)", scoring, "speedup"),
        ("score: max |cheap - naive| (same masks)", scoring, "max_abs_score_diff"),
    ]
    for name, results, key in rows:
        cells = [f"{r[key]:>12.4g}" for r in results] + ["-".rjust(12)] * (2 - len(results))
        print(f"{name:<44}{''.join(cells)}")
    report = {
        "benchmark": "learning",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "figures": label,
        "machine": machine(device),
        "settings": {k: getattr(args, k) for k in cpu_sizes} | {"small": args.small},
        "training": training,
        "scoring": scoring,
        "goals": {
            "train_ratio_ge_0_8": all(r["ratio"] >= 0.8 for r in training),
            "score_speedup_ge_4": all(r["speedup"] >= 4 for r in scoring),
            "scores_equal": all(r["max_abs_score_diff"] < 1e-3 for r in scoring),
        },
        "seconds": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"learning-{device.type}-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\ngoals: {report['goals']}; {report['seconds']:.0f} s; wrote {path}")


if __name__ == "__main__":
    main()
