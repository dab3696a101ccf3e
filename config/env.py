"""Typed readers of environment variables that fail loudly on bad values.

Settings read only the environment (DESIGN.md); a typo in a deployment's variables must stop the
process at start-up with the variable's name, not surface later as odd behaviour.
"""

from __future__ import annotations

import os
from pathlib import Path


class ImproperEnvironment(ValueError):
    """An environment variable is present but cannot be parsed."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperEnvironment(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperEnvironment(f"{name}={raw!r} is not an integer") from exc
    if minimum is not None and value < minimum:
        raise ImproperEnvironment(f"{name}={value} is below its minimum {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperEnvironment(f"{name}={raw!r} is not a number") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise ImproperEnvironment(f"{name}={raw!r} must be finite")
    if minimum is not None and value < minimum:
        raise ImproperEnvironment(f"{name}={value} is below its minimum {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_paths(name: str, default: list[Path]) -> list[Path]:
    """A list of directories separated by ``os.pathsep``, resolved to absolute paths."""
    raw = os.environ.get(name)
    if raw is None:
        return [p.resolve() for p in default]
    return [Path(part).expanduser().resolve() for part in raw.split(os.pathsep) if part.strip()]
