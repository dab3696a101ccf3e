"""A per-process bound on heavy slide reads, so a few large crops cannot starve everyone else.

A web process has a handful of threads and the machine a handful of cores; eight parallel
reads of tens of megapixels kept a colleague's 256 x 256 crop waiting 46 s (issue 14,
finding 5). Reads over ``CROP_HEAVY_SOURCE_PIXELS`` take one of ``CROP_HEAVY_READS`` slots; a
request that gets none within ``CROP_HEAVY_WAIT_SECONDS`` (by default at once: a waiting request
holds a thread that light crops then queue for) is answered 503 with Retry-After, and light reads
never wait for a slot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadGateBusy(RuntimeError):
    """No heavy-read slot came free within the wait."""


class ReadGate:
    """At most ``slots`` holders at once (``slots`` 0: no bound)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._semaphore = threading.BoundedSemaphore(slots) if slots > 0 else None

    @contextmanager
    def slot(self, wait_seconds: float) -> Iterator[None]:
        """Hold a slot for the block; raise :class:`ReadGateBusy` after ``wait_seconds``."""
        if self._semaphore is None:
            yield
            return
        if not self._semaphore.acquire(timeout=max(0.0, wait_seconds)):
            raise ReadGateBusy(f"all {self.slots} heavy-read slots of this process are busy")
        try:
            yield
        finally:
            self._semaphore.release()


_gate: ReadGate | None = None
_gate_lock = threading.Lock()


def heavy_read_gate() -> ReadGate:
    """The process-wide gate, sized by ``CROP_HEAVY_READS`` when first used."""
    global _gate
    if _gate is None:
        with _gate_lock:
            if _gate is None:
                from django.conf import settings

                _gate = ReadGate(settings.CROP_HEAVY_READS)
    return _gate
