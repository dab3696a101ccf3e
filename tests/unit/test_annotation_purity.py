"""annotation.geometry and annotation.interop are pure: importing them must not import Django."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MODULES = (
    "annotation.geometry",
    "annotation.interop",
    "annotation.interop.base",
    "annotation.interop.qupath",
    "annotation.interop.asap",
    "annotation.interop.aperio",
)


def test_geometry_and_interop_import_without_django() -> None:
    script = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in MODULES)
        + "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        + "assert 'django' not in sys.modules, loaded\n"
        + "print('pure')\n"
    )
    # A fresh interpreter: this test process has Django loaded by pytest-django.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pure"
