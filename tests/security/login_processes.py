"""A second (and third) Django process that sends failed logins to the shared test database.

``python -m tests.security.login_processes <path> <username> <n>`` posts ``n`` wrong passwords to
``path`` with Django's test client in its own process and prints the status codes as JSON. The
parent test gives it ``DATABASE_URL`` naming the test database. Under
``SECURITY_BREAK=login_shared`` it counts in its own memory, as the per-process cache did.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any


class ProcessLocalCounters:
    """The login guard's counter store in this process's memory: the broken setting
    ``login_shared`` (each gunicorn worker counted its own failures before the fix)."""

    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}

    def read(self, keys: list[str]) -> dict[str, Any]:
        return {k: self.rows[k] for k in keys if k in self.rows}

    def swap(self, key: str, old: Any, new: Any) -> bool:
        if self.rows.get(key) != old:
            return False
        self.rows[key] = new
        return True

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self.rows.pop(key, None)

    def forget_before(self, cutoff: datetime) -> None:
        for key in [k for k, v in self.rows.items() if v.last_at < cutoff]:
            del self.rows[key]


def main(path: str, username: str, attempts: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test import Client
    from django.test.utils import override_settings

    from annotation import login_guard

    if "login_shared" in os.environ.get("SECURITY_BREAK", "").split(","):
        login_guard.COUNTERS = ProcessLocalCounters()
    client = Client()
    codes = []
    # The parent stores MD5 hashes (tests/security/conftest.py): check with the same hasher.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for attempt in range(attempts):
            wrong = {"username": username, "password": f"wrong-{os.getpid()}-{attempt}"}
            codes.append(client.post(path, wrong).status_code)
    print(json.dumps(codes))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
