"""Fault injection for the reliability tests, imported only by test workers
(``celery worker --include tests.reliability.faults``); production never imports it.

It wraps two real code paths right after they claim their attempt in the database:
``annotation.services.merge._claim`` (a merge) and ``slides.services._read_slide`` (an ingest).
A test asks for a fault by writing a marker file under ``$HC_FAULTS_DIR``:

- ``<kind>-<id>.kill``: the process SIGKILLs itself (a poison input: every run dies);
- ``<kind>-<id>.sleep``: sleep that many seconds (a long task);
- ``<kind>-<id>.pause``: write ``<kind>-<id>.paused`` (holding our pid) and wait, up to 120 s,
  until the ``.pause`` marker is removed (the test acts mid-task meanwhile).

Every run that reaches the fault point appends a line to ``<kind>-<id>.runs``, so the test
counts runs from outside the process, whatever happened to it.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path
from typing import Any

_DIR = Path(os.environ.get("HC_FAULTS_DIR", "/nonexistent-hc-faults"))


def _fault(kind: str, object_id: int) -> None:
    stem = _DIR / f"{kind}-{object_id}"
    if not any(stem.with_suffix(s).exists() for s in (".kill", ".sleep", ".pause")):
        return
    with open(stem.with_suffix(".runs"), "a") as runs:
        runs.write(f"{os.getpid()} {time.time():.3f}\n")
        runs.flush()
        os.fsync(runs.fileno())
    if stem.with_suffix(".kill").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    sleep = stem.with_suffix(".sleep")
    if sleep.exists():
        time.sleep(float(sleep.read_text() or 0))
    pause = stem.with_suffix(".pause")
    if pause.exists():
        stem.with_suffix(".paused").write_text(str(os.getpid()))
        deadline = time.monotonic() + 120
        while pause.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def _install() -> None:
    from annotation.services import merge
    from slides import services

    claim = merge._claim

    @functools.wraps(claim)
    def _claim(region: Any, inputs_hash: str) -> Any:
        job = claim(region, inputs_hash)
        if job is not None:
            _fault("merge", region.pk)
        return job

    read = services._read_slide

    @functools.wraps(read)
    def _read_slide(slide: Any) -> Any:
        _fault("ingest", slide.pk)
        return read(slide)

    merge._claim = _claim
    services._read_slide = _read_slide


_install()
