"""The admission history a batch knob keeps of itself: when the limit changed and what ran.

Both knobs (the scheduler plugin inside vLLM, and ``pals proxy``) record an entry whenever the
running count or the limit in force changes, timestamped on the node's monotonic clock
(``CLOCK_MONOTONIC``: Python's ``time.monotonic()`` in any process on the same Linux host reads
the same clock). ``GET /pals/batch_limit/history`` answers::

    {"clock": "monotonic", "entries": [[t_s, running, waiting, limit], ...]}   (oldest first)

So an operator (or a test) can tell when a new limit took effect from the knob's own record,
without sampling ``/metrics`` fast enough to catch it. The log is bounded (the newest
``size`` changes). Standard library only: it runs inside vLLM's engine-core process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

HISTORY_PATH = "/pals/batch_limit/history"
DEFAULT_SIZE = 4096

Entry = tuple[float, int, int, int]
"""(t_s on the monotonic clock, running, waiting, limit in force)."""


class AdmissionHistory:
    """A bounded, thread-safe log of (running, limit) changes. :meth:`record` is cheap when
    nothing changed (a tuple compare), so the scheduler may call it on every step."""

    def __init__(
        self, size: int = DEFAULT_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._entries: deque[Entry] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._clock = clock
        self._last: tuple[int, int] | None = None

    def record(self, running: int, waiting: int, limit: int) -> None:
        key = (running, limit)
        if key == self._last:
            return
        with self._lock:
            self._last = key
            self._entries.append((self._clock(), running, waiting, limit))

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def as_json(self) -> dict[str, object]:
        return {"clock": "monotonic", "entries": [list(e) for e in self.entries()]}
