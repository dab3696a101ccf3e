"""Pure modules import neither Django nor, where the GPU benchmark needs them, anything beyond
torch and numpy (STYLE.md). Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PURE = {
    "slides": [
        "slides.tiling",
        "slides.tissue",
        "slides.synthetic",
        "slides.synthetic_scene",
        "slides.synthetic_render",
    ],
    "annotation": [
        "annotation.geometry",
        "annotation.consensus",
        "annotation.agreement",
        "annotation.staple",
        "annotation.dawid_skene",
        "annotation.vote_patterns",
        "annotation.placement",
        "annotation.overlap",
        "annotation.interop",
        "annotation.interop.base",
        "annotation.interop.qupath",
        "annotation.interop.asap",
        "annotation.interop.aperio",
    ],
    "learning": [
        "learning.networks",
        "learning.data",
        "learning.augment",
        "learning.training",
        "learning.uncertainty",
        "learning.strategies",
        "learning.strategies.base",
        "learning.strategies.random",
        "learning.strategies.entropy",
        "learning.strategies.bald",
        "learning.strategies.diversity",
        "learning.maps",
        "learning.simulation",
        "learning.simulation.profiles",
        "learning.simulation.drawing",
        "learning.simulation.metrics",
        "learning.simulation.truth",
        "learning.simulation.model_eval",
        "learning.simulation.report",
        "learning.simulation.client",
        "learning.simulation.live",
    ],
    "learning.exports": [
        "learning.exports",
        "learning.exports.archive",
        "learning.exports.coco",
        "learning.exports.config",
        "learning.exports.readme",
        "learning.exports.splits",
        "learning.exports.writer",
    ],
}
# Imported by bench/learning.py on GPU machines that have only torch and numpy.
TORCH_ONLY = [
    "learning.networks",
    "learning.data",
    "learning.augment",
    "learning.training",
    "learning.uncertainty",
]


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(out.stdout.split())


@pytest.mark.parametrize("app", sorted(PURE))
def test_pure_modules_do_not_import_django(app: str) -> None:
    loaded = _imported_after(PURE[app])
    assert set(PURE[app]) <= loaded
    assert not {m for m in loaded if m == "django" or m.startswith("django.")}


def test_benchmarked_learning_modules_need_only_torch_and_numpy() -> None:
    loaded = _imported_after(TORCH_ONLY)
    for heavy in ("django", "skimage", "shapely", "scipy", "PIL"):
        assert heavy not in loaded, f"{heavy} imported by {TORCH_ONLY}"
