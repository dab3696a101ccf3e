"""Counters of failed logins and password-reset e-mails, shared by every web process."""

from __future__ import annotations

from django.db import models


class LoginCounter(models.Model):
    """How many events (failed logins, reset e-mails) one identity had, and when the last was.

    ``key`` is an HMAC of the counter's kind and identity (an account name, an address, or both),
    so the table holds no usernames, e-mail addresses or IP addresses. The rows live in the
    database, not in a per-process cache, so every gunicorn worker counts the same failures
    (annotation/login_guard.py).
    """

    key = models.CharField(max_length=64, unique=True)
    count = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key[:8]}: {self.count} at {self.last_at:%Y-%m-%d %H:%M:%S}"
