"""The learning core is pure: importing it pulls in neither Django nor (for the GPU benchmark)
scikit-image or shapely where it must not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Imported by bench/learning.py on GPU machines that have only torch and numpy.
TORCH_ONLY = [
    "learning.networks",
    "learning.data",
    "learning.augment",
    "learning.training",
    "learning.uncertainty",
]
PURE = [
    *TORCH_ONLY,
    "learning.strategies",
    "learning.strategies.base",
    "learning.strategies.random",
    "learning.strategies.entropy",
    "learning.strategies.bald",
    "learning.strategies.diversity",
]


@pytest.fixture(autouse=True)
def _empty_caches() -> Iterator[None]:
    """Shadows the shared autouse fixture, which needs Django: pure tests use no cache."""
    yield


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def test_pure_learning_modules_do_not_import_django() -> None:
    loaded = _imported_after(PURE)
    assert set(PURE) <= loaded
    assert not {m for m in loaded if m == "django" or m.startswith("django.")}


def test_benchmarked_modules_need_only_torch_and_numpy() -> None:
    loaded = _imported_after(TORCH_ONLY)
    for heavy in ("django", "skimage", "shapely", "scipy", "PIL"):
        assert heavy not in loaded, f"{heavy} imported by {TORCH_ONLY}"
