"""Process-wide settings of the serving process.

glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps what
is freed in it. The gateway answers requests on a thread pool, and a budget version is a burst
of allocations on whichever thread serves it, so over hours each pool thread's arena keeps the
high-water mark of the versions it built: RSS grows with concurrency, not with live data
(docs/scheduler-and-streams.md, the version soak). Fewer arenas share their free memory.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
DEFAULT_ARENAS = 2


def limit_malloc_arenas(arenas: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` (call before threads start), unless the
    ``MALLOC_ARENA_MAX`` environment variable already says how many. Whether it was applied:
    False off Linux, without glibc, or when the environment decides."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
