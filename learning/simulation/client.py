"""A small JSON client for the public API (stdlib only): what a simulated person's browser sends."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:500]}")
        self.status = status


@dataclass
class Response:
    status: int
    data: Any
    headers: dict[str, str]


class Client:
    """One person's session: a token from ``POST /api/auth/token/``, then JSON calls."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.token = ""
        self.token = self.call(
            "POST",
            "/api/auth/token/",
            {
                "username": username,
                "password": password,
            },
        ).data["token"]
        self.requests = 0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> Response:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                status, raw, head = reply.status, reply.read(), dict(reply.headers)
        except urllib.error.HTTPError as error:
            status, raw, head = error.code, error.read(), dict(error.headers)
        self.requests = getattr(self, "requests", 0) + 1
        text = raw.decode(errors="replace")
        if status not in ok:
            raise ApiError(status, method, path, text)
        parsed = json.loads(text) if text and "json" in head.get("Content-Type", "") else None
        return Response(status, parsed, head)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw).data

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.call("POST", path, body, **kw)
