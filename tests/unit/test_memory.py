"""Freed heap memory goes back to the OS after big batches (where the C library allows)."""

from __future__ import annotations

import platform

from invoice_fraud.memory import release_free_memory


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1])


def test_release_returns_freed_heap_pages() -> None:
    if platform.libc_ver()[0] != "glibc":  # the service runs on glibc (Debian images)
        assert release_free_memory() is False
        return
    release_free_memory()
    floor = _rss_kb()
    # Many mid-sized buffers: allocated on the heap (not mmap), so freeing them leaves the
    # pages mapped until the heap is trimmed.
    blocks = [bytearray(4_000) for _ in range(40_000)]
    pin = bytearray(4_000)  # above the blocks: the heap's top cannot shrink by itself
    grown = _rss_kb()
    del blocks
    kept = _rss_kb()
    assert release_free_memory() is True
    released = _rss_kb()
    assert grown - floor > 100_000  # about 160 MB allocated, freed ...
    assert kept - floor > (grown - floor) / 2  # ... still mapped after the free ...
    assert released - floor < (grown - floor) / 2  # ... and given back by the trim
    del pin
