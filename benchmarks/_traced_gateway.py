"""``python -m gridlink`` that says, on SIGUSR1, where its memory is: for finding what a long run
keeps.

    python benchmarks/_traced_gateway.py serve --host 127.0.0.1 --port 8000

Every SIGUSR1 appends to ``$GRIDLINK_TRACE_FILE`` (default ``var/memory-trace.txt``): RSS and its
anonymous and file-backed parts, the C heap as glibc sees it (``mallinfo2``: bytes in use by the
program vs. free but kept), pymalloc's live blocks and arenas, the number of live Python objects,
the 15 most common types and the 15 that grew most since the previous dump, the objects first
seen at the previous dump and still alive (by kind, with who holds an example of each), the 10
largest containers and who holds them, the budget versions' allocation matrices alive and their
numpy memory, the SQLAlchemy engines' compiled-statement caches and pools, the psycopg
connections' prepared statements, and the thread count. The bookkeeping for "kept" (a set of
the ids of all live objects, ~10 MB for 250k objects) is in the RSS from the first dump on.
With ``GRIDLINK_TRACE_MALLOC=1`` the first SIGUSR1 also starts tracemalloc
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
from collections import Counter, deque
from types import FrameType
from typing import Any, TextIO


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
    ids_before: set[int] | None = None
    new_before: dict[int, str] | None = None


def _describe(obj: object) -> str:
    """A container's type with its size and what it holds, e.g. ``list[1000 x float]``."""
    name = type(obj).__qualname__
    if isinstance(obj, (list, tuple, set, frozenset)):
        first = next(iter(obj), None)
        return f"{name}[{_bucket(len(obj))} x {type(first).__qualname__}]"
    if isinstance(obj, dict):
        key = next(iter(obj), None)
        value = type(obj.get(key)).__qualname__
        return f"dict[{_bucket(len(obj))} x {type(key).__qualname__}: {value}]"
    return name


def _bucket(n: int) -> str:
    return str(n) if n < 8 else f"<={1 << (n - 1).bit_length()}"


def _owners(obj: object, skip: set[int], depth: int = 4) -> str:
    """The chain of types that hold ``obj``: at each level the first referrer that is not a
    frame or one of the dump's own lists (``skip``)."""
    chain = []
    for _ in range(depth):
        holder = next(
            (
                r
                for r in gc.get_referrers(obj)
                if not isinstance(r, FrameType) and id(r) not in skip
            ),
            None,
        )
        if holder is None:
            break
        obj = holder
        chain.append(_describe(obj))
    return " <- ".join(chain) or "(no referrer)"


def _kept(objects: list[object], out: TextIO) -> None:
    """Objects first seen at the previous dump and still alive now, by kind, with who holds a
    few of them: what a run keeps, as opposed to what it churns."""
    ids_now = {id(o) for o in objects}
    if _State.new_before is not None:
        kept = [o for o in objects if _State.new_before.get(id(o)) == type(o).__qualname__]
        kinds = Counter(_describe(o) for o in kept)
        out.write(f"   kept since the previous dump: {len(kept)} objects: ")
        out.write(", ".join(f"{k} {n}" for k, n in kinds.most_common(12)) + "\n")
        examples: dict[str, object] = {}
        for obj in kept:
            examples.setdefault(_describe(obj), obj)
        for kind, _n in kinds.most_common(8):
            chain = _owners(examples[kind], {id(objects), id(kept), id(examples)})
            out.write(f"      {kind}: {chain}\n")
        del examples
    if _State.ids_before is not None:
        _State.new_before = {
            id(o): type(o).__qualname__ for o in objects if id(o) not in _State.ids_before
        }
    _State.ids_before = ids_now


def _largest(objects: list[object], out: TextIO) -> None:
    """The 10 largest containers alive and who holds them: a cache or a list that keeps many
    small objects (str, float, datetime: not tracked by the collector) is one object here."""
    containers: list[Any] = [o for o in objects if type(o) in (list, dict, set, deque, tuple)]
    sized = [o for o in containers if len(o) >= 1000]
    del containers
    sized.sort(key=len, reverse=True)
    out.write(f"   containers of >= 1000 items: {len(sized)}\n")
    skip = {id(objects), id(sized), id(_State.ids_before), id(_State.new_before)}
    for rank in range(min(10, len(sized))):
        obj = sized[rank]
        out.write(f"      {_describe(obj)} ({len(obj)}): {_owners(obj, skip)}\n")


def _matrices(objects: list[object], out: TextIO) -> None:
    """The budget versions' allocation matrices alive, their numpy memory (arrays are not
    tracked by the collector, so they are counted through the matrices that hold them) and who
    holds the first three found."""
    matrices: list[Any] = [o for o in objects if type(o).__qualname__ == "AllocationMatrix"]
    nbytes = sum(m.node_ids.nbytes + m.instants_us.nbytes + m.powers_w.nbytes for m in matrices)
    out.write(f"   allocation matrices: {len(matrices)}, {nbytes / 1e6:.1f} MB of arrays\n")
    skip = {id(objects), id(matrices)}
    for rank in range(min(3, len(matrices))):
        out.write(f"      {_owners(matrices[rank], skip, depth=6)}\n")


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
        _matrices(objects, out)
        _kept(objects, out)
        _largest(objects, out)
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
