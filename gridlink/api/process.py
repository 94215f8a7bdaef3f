"""Process-wide settings of the serving process.

glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps what
is freed in it. The gateway answers requests on a thread pool, and a budget version is a burst
of allocations on whichever thread serves it, so over hours each pool thread's arena keeps the
high-water mark of the versions it built: RSS grows with concurrency, not with live data
(docs/scheduler-and-streams.md, the version soak). Fewer arenas share their free memory, and
a periodic ``malloc_trim`` hands what is free back to the system instead of keeping it as the
high-water mark of the largest burst so far; a fixed mmap threshold keeps large buffers out of
the heap, where small long-lived allocations would pin them (:func:`fix_mmap_threshold`).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import time

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8
DEFAULT_ARENAS = 2
DEFAULT_MMAP_THRESHOLD_B = 128 * 1024
DEFAULT_TRIM_INTERVAL_S = 30.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, loaded once; None off Linux or without it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` (call before threads start), unless the
    ``MALLOC_ARENA_MAX`` environment variable already says how many. Whether it was applied:
    False off Linux, without glibc, or when the environment decides."""
    return _mallopt(M_ARENA_MAX, arenas, unless_env="MALLOC_ARENA_MAX")


def fix_mmap_threshold(threshold_b: int = DEFAULT_MMAP_THRESHOLD_B) -> bool:
    """Serve every allocation of ``threshold_b`` or more with its own ``mmap`` (given back to
    the system when freed), unless the ``MALLOC_MMAP_THRESHOLD_`` environment variable says.

    glibc starts there (128 kB) but raises the threshold to the size of each mmapped block that
    is freed, up to 32 MB: after the gateway's first large buffers (a version's JSON, a report
    body, a driver buffer) have come and gone, buffers of that size are cut from the heap
    instead, where the small long-lived allocations made meanwhile pin them, and RSS keeps the
    high-water mark. Setting the threshold turns that adjustment off. Whether it was applied:
    False off Linux, without glibc, or when the environment decides."""
    return _mallopt(M_MMAP_THRESHOLD, threshold_b, unless_env="MALLOC_MMAP_THRESHOLD_")


def _mallopt(param: int, value: int, *, unless_env: str) -> bool:
    """glibc's ``mallopt(param, value)`` unless the environment variable ``unless_env`` (glibc's
    own name for the same setting) is set; whether it was applied."""
    if unless_env in os.environ:
        return False
    mallopt = getattr(_glibc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(param, value))


def trim_heap() -> bool:
    """Return the free memory of every malloc arena to the system (glibc's ``malloc_trim(0)``).
    Whether any was released; False off glibc."""
    malloc_trim = getattr(_glibc(), "malloc_trim", None)
    if malloc_trim is None:
        return False
    return bool(malloc_trim(0))


def start_heap_trimmer(interval_s: float = DEFAULT_TRIM_INTERVAL_S) -> threading.Thread | None:
    """Call :func:`trim_heap` every ``interval_s`` seconds on a daemon thread, for the life of
    the process. None (nothing started) off glibc."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    if getattr(_glibc(), "malloc_trim", None) is None:
        return None

    def run() -> None:
        while True:
            time.sleep(interval_s)
            trim_heap()

    thread = threading.Thread(target=run, name="gridlink-heap-trim", daemon=True)
    thread.start()
    return thread
