"""Test-session environment, loaded as a pytest plugin before Django reads its settings.

Settings read only the environment, so the tests choose their own var/ directory, slide roots
and broker here; the live worker process inherits the same variables.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from pathlib import Path

from tests.datapaths import _DEFAULT as _DEFAULT_DATA


def _redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _setdefault_env() -> None:
    var_dir = Path(os.environ.get("HISTOCROWD_TEST_VAR_DIR") or tempfile.mkdtemp(prefix="hc-test-"))
    os.environ.setdefault("HISTOCROWD_VAR_DIR", str(var_dir))
    data = Path(os.environ.get("HISTOCROWD_TEST_DATA", str(_DEFAULT_DATA)))
    (var_dir / "slides").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SLIDE_ROOTS", os.pathsep.join([str(data), str(var_dir / "slides")]))
    # A real broker: Redis when one answers (database 15, away from a demo's queues), else the
    # embedded filesystem transport. TEST_BROKER_URL overrides both.
    if "TEST_BROKER_URL" in os.environ:
        os.environ["CELERY_BROKER_URL"] = os.environ["TEST_BROKER_URL"]
    elif "CELERY_BROKER_URL" not in os.environ:
        if _redis_answers():
            os.environ["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/15"
        else:
            os.environ["CELERY_BROKER_URL"] = "filesystem://"
    # Each test session gets its own key prefix on the shared Redis, so two sessions on one
    # machine (or a developer's demo) never consume each other's tasks.
    os.environ.setdefault(
        "CELERY_REDIS_KEY_PREFIX", f"hc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}:"
    )
    # Killed-worker tests must see redelivery in seconds, not the production hour.
    os.environ.setdefault("CELERY_VISIBILITY_TIMEOUT", "60")
    os.environ.setdefault("CELERY_UNACKED_RESTORE_INTERVAL", "1")
    os.environ.setdefault("CELERY_UNACKED_RESTORE_THROTTLE", "1")  # scan on every sweep
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # A tiny network, so a training test ends in seconds on two CPU cores; a short lease, so a
    # killed chunk is taken over in seconds.
    for name, value in {
        "LEARNING_DEVICE": "cpu",
        "LEARNING_EPOCHS": "3",
        "LEARNING_PATCH_SIZE": "64",
        "LEARNING_BATCH_SIZE": "8",
        "LEARNING_BASE_WIDTH": "4",
        "LEARNING_DEPTH": "2",
        "LEARNING_MC_SAMPLES": "2",
        "LEARNING_LEASE_SECONDS": "15",
    }.items():
        os.environ.setdefault(name, value)


_setdefault_env()
