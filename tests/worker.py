"""A real Celery worker process for tests, and the means to kill it mid-task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` from /proc (no psutil dependency)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; fields after the closing parenthesis are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def wait_for(
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.1,
    message: str = "condition",
) -> object:
    """Poll ``predicate`` until truthy; fail after ``timeout`` seconds (every wait is bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)


class LiveWorker:
    """``celery worker`` in a subprocess, on the test broker and the test database."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        queues: str = "default,consensus,gpu",
        concurrency: int = 1,
        name: str = "test",
        include: str = "",
    ) -> None:
        """``include``: further modules the worker imports (e.g. tests.reliability.faults)."""
        self.env = env
        self.log_path = log_path
        self.queues = queues
        self.concurrency = concurrency
        self.name = name
        self.include = include
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queues,
                "-c",
                str(self.concurrency),
                "--pool",
                "prefork",
                "-l",
                "info",
                "-n",
                f"{self.name}-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *(["--include", self.include] if self.include else []),
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._ready, timeout, 0.2, "the worker to be ready")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}: {self.log_tail()}")
        return b" ready." in self.log_path.read_bytes()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_bytes()[-chars:].decode(errors="replace")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pool_children(self) -> list[int]:
        return _children(self.pid)

    def kill_pool_child(self) -> int:
        """SIGKILL one pool process (the task it runs is lost with it); returns its pid."""
        children = self.pool_children()
        if not children:
            raise RuntimeError("the worker has no pool process to kill")
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def kill_whole(self) -> None:
        """SIGKILL the main process and its pool: nothing gets to ack or reject anything."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
