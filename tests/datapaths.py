"""Where the shared real-world test data lives (pure; importable without Django)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def shared_data_dir() -> Path:
    """Return ``HISTOCROWD_TEST_DATA`` (default ``../shared/data``), or skip the test.

    Under ``CI=true`` a missing directory is an error, not a skip: CI always has the data.
    """
    path = Path(os.environ.get("HISTOCROWD_TEST_DATA", str(_DEFAULT)))
    if path.is_dir():
        return path
    message = f"shared test data not found at {path} (set HISTOCROWD_TEST_DATA)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
