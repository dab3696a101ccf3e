"""The slide handle cache: LRU capacity, sharing, and dropping a handle that raised."""

from __future__ import annotations

import shutil
import threading

import openslide
import pytest

from slides.readers import SlideHandleCache


def test_lru_keeps_at_most_capacity_and_reuses_handles(slides_dir):
    cache = SlideHandleCache(capacity=2)
    a, b, c = (
        str(slides_dir / n)
        for n in ("cmu-1-small-region.svs", "hamamatsu-dapi.ndpi", "hamamatsu-tritc.ndpi")
    )
    with cache.open(a) as first:
        pass
    with cache.open(a) as again:
        assert again is first
    with cache.open(b), cache.open(c):
        pass
    assert len(cache) == 2
    with cache.open(a) as reopened:
        assert reopened is not first  # a was the least recently used, so it was evicted
        assert reopened.handle.dimensions == (2220, 2967)
    cache.clear()


def test_handle_that_raised_is_dropped_and_the_next_open_is_fresh(slides_dir, tmp_path):
    # A copy cut short inside its tile data: OpenSlide opens it, then fails reading pixels.
    original = (slides_dir / "cmu-1-small-region.svs").read_bytes()
    path = tmp_path / "cut.svs"
    shutil.copyfile(slides_dir / "cmu-1-small-region.svs", path)
    cache = SlideHandleCache(capacity=4)
    with cache.open(str(path)) as entry:
        entry.handle.read_region((0, 0), 0, (64, 64))
    first = entry
    path.write_bytes(original[: len(original) // 3])
    with pytest.raises(openslide.OpenSlideError):
        with cache.open(str(path)) as entry:
            entry.handle.read_region((0, 0), 0, (2220, 2967))
    assert len(cache) == 0
    path.write_bytes(original)
    with cache.open(str(path)) as entry:
        assert entry is not first
        entry.handle.read_region((0, 0), 0, (64, 64))
    cache.clear()


def test_eviction_never_closes_a_handle_in_use(slides_dir):
    cache = SlideHandleCache(capacity=1)
    a, b = str(slides_dir / "cmu-1-small-region.svs"), str(slides_dir / "hamamatsu-dapi.ndpi")
    errors = []
    with cache.open(a) as held:

        def other() -> None:
            try:
                with cache.open(b) as entry:
                    entry.handle.read_region((0, 0), 0, (32, 32))
            except Exception as exc:  # pragma: no cover - the assertion below reports it
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        # a was evicted by b, but is still in use here: reading must still work.
        held.handle.read_region((100, 100), 0, (32, 32))
    assert not errors
    cache.clear()
