"""``python -m gridlink`` that says, on SIGUSR1, where its memory is: for finding what a long run
keeps.

    python benchmarks/_traced_gateway.py serve --host 127.0.0.1 --port 8000

Every SIGUSR1 appends to ``$GRIDLINK_TRACE_FILE`` (default ``var/memory-trace.txt``): RSS and its
anonymous and file-backed parts, the C heap as glibc sees it (``mallinfo2``: bytes in use by the
program vs. free but kept), pymalloc's live blocks and arenas, the number of live Python objects,
the 15 most common types and the 15 that grew most since the previous dump, the SQLAlchemy
engines' compiled-statement caches and pools, the psycopg connections' prepared statements, and
the thread count. With ``GRIDLINK_TRACE_MALLOC=1`` the first SIGUSR1 also starts tracemalloc
(tracing the start-up would take minutes) and later ones add the 10 allocation sites holding most
of what was allocated since and is still alive, and the 15 sites that grew most since the second
dump (tracemalloc's own bookkeeping is in the C heap figure: compare its growth, not the heap's).
``version_soak.py --traced`` sends it at the start and at every report. The gateway imports
``gridlink`` as installed; to trace a worktree's code, run the soak with ``PYTHONPATH`` set to it.
"""

from __future__ import annotations

import ctypes
import gc
import linecache
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


def _status_mb() -> dict[str, float]:
    """The resident set and its parts (anonymous memory, mapped files) from /proc, in MB."""
    with open("/proc/self/status") as status:
        return {
            key: int(rest.split()[0]) / 1024
            for key, _, rest in (line.partition(":") for line in status)
            if key in ("VmRSS", "RssAnon", "RssFile")
        }


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


class _State:
    """What the previous dumps saw, for the differences."""

    types_before: Counter[str] | None = None
    snapshot_before: tracemalloc.Snapshot | None = None


def _database_caches(objects: list[object]) -> str:
    """The SQLAlchemy engines' compiled-statement caches and pools, and the psycopg connections'
    prepared statements: caches that grow while new statement shapes appear."""
    from psycopg import Connection
    from sqlalchemy import Engine

    parts = []
    for obj in objects:
        if isinstance(obj, Engine):
            cache = obj._compiled_cache
            capacity = getattr(cache, "capacity", "?")
            size = "off" if cache is None else f"{len(cache)}/{capacity}"
            parts.append(f"engine {obj.url.database}: compiled cache {size}, {obj.pool.status()}")
    connections = [o for o in objects if isinstance(o, Connection)]
    prepared = [len(c._prepared._names) for c in connections]
    counted = [len(c._prepared._counts) for c in connections]
    parts.append(
        f"{len(connections)} psycopg connections, prepared statements {prepared}, "
        f"counted queries {counted}"
    )
    return "; ".join(parts)


def _dump(_signum: int, _frame: FrameType | None) -> None:
    tracing = os.environ.get("GRIDLINK_TRACE_MALLOC") == "1"
    was_tracing = tracemalloc.is_tracing()
    if tracing and not was_tracing:
        tracemalloc.start(10)
    gc.collect()
    objects = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in objects)
    path = os.environ.get("GRIDLINK_TRACE_FILE", "var/memory-trace.txt")
    with open(path, "a") as out:
        status = _status_mb()
        out.write(
            f"== RSS {status.get('VmRSS', 0):.1f} MB (anonymous {status.get('RssAnon', 0):.1f}, "
            f"files {status.get('RssFile', 0):.1f}); {_heap()}; "
            f"threads {threading.active_count()}\n"
        )
        if tracemalloc.is_tracing():
            traced_b, _peak_b = tracemalloc.get_traced_memory()
            out.write(
                f"   tracemalloc: {traced_b / 1e6:.1f} MB traced, its own bookkeeping "
                f"{tracemalloc.get_tracemalloc_memory() / 1e6:.1f} MB (in the C heap above)\n"
            )
        # every live block of Python's small-object allocator, containers or not (str, bytes,
        # float...): flat while RSS grows means fragmentation, rising means something is kept
        out.write(f"   pymalloc blocks {sys.getallocatedblocks()}, {pymalloc_arenas()}\n")
        out.write(f"   {len(objects)} objects: ")
        out.write(", ".join(f"{name} {n}" for name, n in types.most_common(15)) + "\n")
        out.write(f"   {_database_caches(objects)}\n")
        del objects
        if _State.types_before is not None:
            grown = types.copy()
            grown.subtract(_State.types_before)
            out.write("   types grown since the previous dump: ")
            out.write(", ".join(f"{name} {n:+d}" for name, n in grown.most_common(15)) + "\n")
        _State.types_before = types
        if tracing:
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [
                    tracemalloc.Filter(False, tracemalloc.__file__),
                    tracemalloc.Filter(False, linecache.__file__),
                ]
            )
            for stat in snapshot.statistics("traceback")[:10]:
                out.write(f"   {stat.size / 1e3:.0f} kB in {stat.count} blocks\n")
                for line in stat.traceback.format(limit=6, most_recent_first=True):
                    out.write(f"      {line}\n")
            if _State.snapshot_before is not None:
                # growth since the second dump (the first with a report-s of traced allocations)
                out.write("   grown since the second dump, by allocation site:\n")
                for diff in snapshot.compare_to(_State.snapshot_before, "traceback")[:15]:
                    out.write(
                        f"   {diff.size_diff / 1e3:+.0f} kB ({diff.count_diff:+d} blocks), "
                        f"now {diff.size / 1e3:.0f} kB\n"
                    )
                    for line in diff.traceback.format(limit=8, most_recent_first=True):
                        out.write(f"      {line}\n")
            elif was_tracing:
                _State.snapshot_before = snapshot
            # formatting read whole source files into linecache (the 72 files of one soak's
            # dumps: 6.2 MB), which would stay and be counted as the gateway's growth
            linecache.clearcache()


def main() -> None:
    signal.signal(signal.SIGUSR1, _dump)
    from gridlink.cli import main as gridlink_main

    gridlink_main()


if __name__ == "__main__":
    main()
