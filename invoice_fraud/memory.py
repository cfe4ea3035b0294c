"""Give the heap memory a big request freed back to the operating system.

A 10,000-invoice batch allocates tens of megabytes of small Python objects (the parsed body,
the answer's dicts, the store's columns) and frees them when it is answered. glibc's
allocator keeps most of those pages mapped, so a worker's RSS ratchets up with every burst
of batches (in-process: 205 -> 386 MB over 30 batches, 328 MB after one ``malloc_trim``).
Trimming takes under a millisecond here, against tens for the batch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def release_free_memory() -> bool:
    """Return freed heap pages to the OS; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
