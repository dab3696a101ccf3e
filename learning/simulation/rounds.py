"""Driving the learning rounds over the public API (issue 7's contract), as a manager would.

``GET /api/projects/{id}/rounds/`` lists the rounds; a round in ``collecting`` whose quota is
met starts by itself (``auto_rounds``) or by ``POST /api/projects/{id}/rounds/start/``; the
round then trains, scores and proposes the next round's regions. When the rounds API is not
there (404), the simulator stops after the first round and says so in the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from learning.simulation.client import ApiError, Client

logger = logging.getLogger(__name__)


@dataclass
class RoundOutcome:
    number: int
    state: str
    failed_reason: str = ""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    model_version: int | None = None
    seconds: float = 0.0


class RoundDriver:
    def __init__(self, manager: Client, project_id: int) -> None:
        self.manager = manager
        self.project_id = project_id

    def available(self) -> bool:
        reply = self.manager.call("GET", f"/api/projects/{self.project_id}/rounds/", ok=(200, 404))
        return reply.status == 200

    def rounds(self) -> list[dict[str, Any]]:
        data = self.manager.get(f"/api/projects/{self.project_id}/rounds/")
        if isinstance(data, dict):  # paginated
            data = data.get("results", [])
        return list(data or [])

    def _round(self, number: int) -> dict[str, Any] | None:
        return next((r for r in self.rounds() if r.get("number") == number), None)

    def finish(self, number: int, timeout: float, check: Callable[[], None]) -> RoundOutcome:
        """Train, score and propose round ``number``; wait until it is done or failed."""
        start = time.monotonic()
        current = self._round(number)
        if current is not None and current.get("state") == "collecting":
            try:
                self.manager.post(f"/api/projects/{self.project_id}/rounds/start/")
            except ApiError as exc:  # started by the quota meanwhile, or nothing to learn
                logger.info("round %s start refused: %s", number, exc)
        while True:
            check()
            current = self._round(number) or {}
            state = current.get("state", "missing")
            if state == "done" or current.get("failed_reason"):
                break
            if time.monotonic() - start > timeout:
                state = f"timeout in {state}"
                break
            time.sleep(1.0)
        return RoundOutcome(
            number=number,
            state=state,
            failed_reason=current.get("failed_reason") or "",
            stage_seconds=dict(current.get("stage_seconds") or {}),
            model_version=current.get("model_version"),
            seconds=time.monotonic() - start,
        )

    def model_versions(self) -> list[dict[str, Any]]:
        data = self.manager.get(f"/api/model-versions/?project={self.project_id}")
        if isinstance(data, dict):
            data = data.get("results", [])
        return list(data or [])

    def model_version(self, version_id: int) -> dict[str, Any]:
        return self.manager.get(f"/api/model-versions/{version_id}/")
