"""``python -m gridlink`` under tracemalloc, for finding what a long run keeps.

    python benchmarks/_traced_gateway.py serve --host 127.0.0.1 --port 8000

The first SIGUSR1 starts tracing (the start-up, traced, would take minutes); every later one
appends to ``$GRIDLINK_TRACE_FILE`` (default ``var/tracemalloc.txt``) the 25 allocation sites
holding most of what was allocated since then and is still alive, with the traced total.
``version_soak.py --traced`` sends it at the start and at every report.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from types import FrameType


def _dump(_signum: int, _frame: FrameType | None) -> None:
    if not tracemalloc.is_tracing():
        tracemalloc.start(12)
        return
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    path = os.environ.get("GRIDLINK_TRACE_FILE", "var/tracemalloc.txt")
    current, peak = tracemalloc.get_traced_memory()
    with open(path, "a") as out:
        out.write(f"== traced {current / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB)\n")
        for stat in snapshot.statistics("traceback")[:25]:
            out.write(f"{stat.size / 1e3:.0f} kB in {stat.count} blocks\n")
            for line in stat.traceback.format(limit=8, most_recent_first=True):
                out.write(f"    {line}\n")


def main() -> None:
    signal.signal(signal.SIGUSR1, _dump)
    from gridlink.cli import main as gridlink_main

    gridlink_main()


if __name__ == "__main__":
    main()
