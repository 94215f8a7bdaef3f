"""``python -m gridlink`` that says, on SIGUSR1, where its memory is: for finding what a long run
keeps.

    python benchmarks/_traced_gateway.py serve --host 127.0.0.1 --port 8000

Every SIGUSR1 appends to ``$GRIDLINK_TRACE_FILE`` (default ``var/memory-trace.txt``): RSS, the
C heap as glibc sees it (``mallinfo2``: bytes in use by the program vs. free but kept), the
number of live Python objects and the 15 most common types, and the thread count. With
``GRIDLINK_TRACE_MALLOC=1`` the first SIGUSR1 also starts tracemalloc (tracing the start-up
would take minutes) and later ones add the 15 allocation sites holding most of what was
allocated since and is still alive. ``version_soak.py --traced`` sends it at the start and at
every report.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import threading
import tracemalloc
from collections import Counter
from types import FrameType


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _heap() -> str:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return "heap: n/a"
    return (
        f"heap: in use {info.uordblks / 1e6:.1f} MB, free but kept {info.fordblks / 1e6:.1f} MB, "
        f"mmapped {info.hblkhd / 1e6:.1f} MB"
    )


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pymalloc_arenas() -> str:
    """pymalloc's arenas now and at most, from ``sys._debugmallocstats`` (which writes to the C
    stderr, so file descriptor 2 goes to a scratch file while it runs)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as scratch:
        saved = os.dup(2)
        try:
            os.dup2(scratch.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        scratch.seek(0)
        stats = {
            key: line.rsplit("=", 1)[1].strip()
            for line in scratch
            for key in ("arenas allocated current", "arenas highwater mark")
            if key in line
        }
    return ", ".join(f"{key} {value}" for key, value in stats.items()) or "arenas: n/a"


def _dump(_signum: int, _frame: FrameType | None) -> None:
    tracing = os.environ.get("GRIDLINK_TRACE_MALLOC") == "1"
    if tracing and not tracemalloc.is_tracing():
        tracemalloc.start(10)
    objects = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in objects)
    path = os.environ.get("GRIDLINK_TRACE_FILE", "var/memory-trace.txt")
    with open(path, "a") as out:
        out.write(f"== RSS {_rss_mb():.1f} MB; {_heap()}; threads {threading.active_count()}\n")
        # every live block of Python's small-object allocator, containers or not (str, bytes,
        # float...): flat while RSS grows means fragmentation, rising means something is kept
        out.write(f"   pymalloc blocks {sys.getallocatedblocks()}, {pymalloc_arenas()}\n")
        out.write(f"   {len(objects)} objects: ")
        out.write(", ".join(f"{name} {n}" for name, n in types.most_common(15)) + "\n")
        del objects
        if tracing:
            snapshot = tracemalloc.take_snapshot()
            for stat in snapshot.statistics("traceback")[:15]:
                out.write(f"   {stat.size / 1e3:.0f} kB in {stat.count} blocks\n")
                for line in stat.traceback.format(limit=6, most_recent_first=True):
                    out.write(f"      {line}\n")


def main() -> None:
    signal.signal(signal.SIGUSR1, _dump)
    from gridlink.cli import main as gridlink_main

    gridlink_main()


if __name__ == "__main__":
    main()
