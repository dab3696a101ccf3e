"""OpenSlide handles, cached per process (LRU, thread-safe).

OpenSlide errors latch: after any error a handle returns only errors, so a handle that raised is
dropped from the cache and closed once the last user lets go of it (closing it under a reader in
another thread would crash the process).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openslide

logger = logging.getLogger(__name__)

# Errors that mean "this file cannot be read (any more)"; anything else is a programming error.
SLIDE_ERRORS: tuple[type[BaseException], ...] = (
    openslide.OpenSlideError,
    openslide.OpenSlideUnsupportedFormatError,
    OSError,
    ValueError,
)


class _Entry:
    """A handle with a use count, so eviction never closes a handle that is being read."""

    __slots__ = ("handle", "users", "evicted", "extras")

    def __init__(self, handle: openslide.OpenSlide) -> None:
        self.handle = handle
        self.users = 0
        self.evicted = False
        self.extras: dict[Any, Any] = {}


class SlideHandleCache:
    """An LRU of open slides keyed by path; use :meth:`open` as a context manager."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @contextmanager
    def open(self, path: str) -> Iterator[_Entry]:
        """Yield the cached entry for ``path`` (``entry.handle`` is the OpenSlide object).

        An exception raised inside the block drops the handle: OpenSlide errors latch.
        """
        entry = self._acquire(path)
        try:
            yield entry
        except BaseException:
            self._evict(path, entry)
            raise
        finally:
            self._release(entry)

    def _acquire(self, path: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(path)
            if entry is not None:
                self._entries.move_to_end(path)
                entry.users += 1
                return entry
        # Open outside the lock: opening a large slide takes tens of milliseconds.
        handle = openslide.OpenSlide(path)
        with self._lock:
            existing = self._entries.get(path)
            if existing is not None:
                existing.users += 1
                spare = handle
                entry = existing
            else:
                entry = _Entry(handle)
                entry.users = 1
                self._entries[path] = entry
                spare = None
                victims = []
                while len(self._entries) > self._capacity:
                    _, victim = self._entries.popitem(last=False)
                    victim.evicted = True
                    victims.append(victim)
        if spare is not None:
            spare.close()
        else:
            for victim in victims:
                self._close_if_idle(victim)
        return entry

    def _evict(self, path: str, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(path) is entry:
                del self._entries[path]
            entry.evicted = True
        logger.info("dropped slide handle %s after an error", path)

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.users -= 1
        self._close_if_idle(entry)

    def _close_if_idle(self, entry: _Entry) -> None:
        with self._lock:
            should_close = entry.evicted and entry.users == 0
            if should_close:
                entry.users = -1  # closed; never handed out again
        if should_close:
            entry.handle.close()

    def clear(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            for entry in entries:
                entry.evicted = True
        for entry in entries:
            self._close_if_idle(entry)


_cache: SlideHandleCache | None = None
_cache_lock = threading.Lock()


def handle_cache() -> SlideHandleCache:
    """The process-wide cache, sized by ``SLIDE_HANDLE_CACHE_SIZE``."""
    global _cache
    if _cache is None:
        with _cache_lock:
            if _cache is None:
                from django.conf import settings

                _cache = SlideHandleCache(settings.SLIDE_HANDLE_CACHE_SIZE)
    return _cache
