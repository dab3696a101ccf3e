"""The simulator's own web server and Celery worker, as subprocesses on the same database.

Both inherit the environment (broker, var dir, slide roots) with ``DATABASE_URL`` pointing at the
database this process uses, and the worker gets the profile's ``LEARNING_*`` settings. The web
server is gunicorn on a free loopback port; the login throttle is lifted there because a whole
simulated class logs in within seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL naming the database of ``settings_dict`` (SQLite file or PostgreSQL)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(settings_dict["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("an in-memory SQLite database cannot be shared with a worker")
        return f"sqlite:///{name}"
    if "postgresql" in engine:
        auth = settings_dict.get("USER") or ""
        if settings_dict.get("PASSWORD"):
            auth += f":{settings_dict['PASSWORD']}"
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{'@' if auth else ''}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"the simulator cannot share database engine {engine}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A subprocess in its own session, logging to a file, stopped by its own pid only."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.log, "ab")
        self.popen = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = self.log.read_bytes()[-3000:].decode(errors="replace")
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}: {tail}")

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


def _wait(predicate: Any, timeout: float, what: str, proc: Process) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        proc.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)


class LiveSystem:
    """gunicorn + one Celery worker (all queues) for one simulation; a context manager."""

    def __init__(self, db_url: str, log_dir: Path, learning_env: dict[str, str]) -> None:
        env = dict(os.environ)
        env["DATABASE_URL"] = db_url
        # No login lift is needed: the login guard never counts successful logins.
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The web process creates training runs too (a manager's "start"): same settings.
        web_env = {**env, **learning_env, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
        self.web = Process(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                "2",
                "--threads",
                "4",
                "--timeout",
                "120",
            ],
            web_env,
            log_dir / "web.log",
        )
        worker_env = {**env, **learning_env}
        self.worker = Process(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "default,consensus,gpu",
                "-c",
                "1",
                "--pool",
                "prefork",
                "-l",
                "info",
                "-n",
                f"simulator-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            worker_env,
            log_dir / "worker.log",
        )

    def _web_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            return False

    def __enter__(self) -> LiveSystem:
        self.worker.start()
        self.web.start()
        try:
            _wait(lambda: b" ready." in self.worker.log.read_bytes(), 120, "worker", self.worker)
            _wait(self._web_up, 120, "web server", self.web)
        except BaseException:
            self.stop()
            raise
        logger.info("simulator web %s, worker pid %s", self.url, self.worker.popen.pid)
        return self

    def check(self) -> None:
        self.web.check()
        self.worker.check()

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()

    def __exit__(self, *exc: object) -> None:
        self.stop()
