"""Which server paths may be registered as slides: only files under the configured roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class PathNotAllowed(ValueError):
    """The path is outside every slide root, missing, or not a regular file."""


def resolve_slide_path(raw: str, roots: Sequence[Path]) -> Path:
    """Resolve ``raw`` (following symlinks) and require it to be a file under one of ``roots``.

    Resolution happens before the check, so ``..`` segments and symlinks pointing outside a root
    are refused rather than trusted.
    """
    if not raw or "\x00" in raw:
        raise PathNotAllowed("the path is empty or contains a NUL byte")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        raise PathNotAllowed(f"{raw!r} is not an absolute path")
    try:
        resolved = candidate.resolve(strict=True)
    except (FileNotFoundError, RuntimeError, OSError):
        raise PathNotAllowed(f"{raw!r} does not exist") from None
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "(none configured)"
        raise PathNotAllowed(f"{raw!r} is outside the slide roots: {allowed}")
    if not resolved.is_file():
        raise PathNotAllowed(f"{raw!r} is not a regular file")
    return resolved
