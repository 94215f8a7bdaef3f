"""Virtual time for the simulator, and a pacer that ties it to wall time for live demos.

``SimClock.sleep(dt)`` advances every node attached to the clock to ``now + dt``, in attach
order, then moves ``now``. All state changes (cap writes, batch-limit changes, submitted
requests) therefore happen between two ``sleep`` calls, at ``now``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

from pals_core.errors import ConfigurationError


class _Participant(Protocol):
    def advance_to(self, t_s: float) -> None: ...


class SimClock:
    """A clock whose ``sleep`` runs the simulation. Implements :class:`pals_core.clock.Clock`.

    ``lock`` is held while the simulation advances; code in another thread (an HTTP server
    submitting requests while a :class:`RealTimePacer` runs) takes it before touching a node.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = float(start_s)
        self._participants: list[_Participant] = []
        self.lock = threading.RLock()

    def now_s(self) -> float:
        return self._now_s

    def attach(self, participant: _Participant) -> None:
        """Advance ``participant`` with this clock from now on."""
        with self.lock:
            participant.advance_to(self._now_s)
            self._participants.append(participant)

    def sleep(self, duration_s: float) -> None:
        if not (duration_s >= 0 and math.isfinite(duration_s)):
            raise ConfigurationError(f"duration_s must be a finite number >= 0, got {duration_s}")
        self.advance_to(self._now_s + duration_s)

    def advance_to(self, t_s: float) -> None:
        """Run every attached node up to ``t_s`` (no-op if ``t_s`` is not in the future)."""
        with self.lock:
            if t_s <= self._now_s:
                return
            for participant in self._participants:
                participant.advance_to(t_s)
            self._now_s = t_s


class RealTimePacer:
    """Advance a :class:`SimClock` in step with wall time (``speed`` sim-seconds per second).

    ``run(duration_s)`` blocks; ``start()``/``stop()`` run it on a daemon thread. Each slice
    advances the clock by the wall time that actually passed, so a slow slice is caught up.
    """

    def __init__(self, clock: SimClock, speed: float = 1.0, slice_s: float = 0.02) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ConfigurationError(f"speed must be a positive number, got {speed}")
        if not slice_s > 0:
            raise ConfigurationError(f"slice_s must be > 0, got {slice_s}")
        self.clock = clock
        self.speed = speed
        self.slice_s = slice_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, duration_s: float | None = None) -> None:
        """Pace for ``duration_s`` wall seconds (forever if None, until :meth:`stop`)."""
        start_wall = time.monotonic()
        start_sim = self.clock.now_s()
        while not self._stop.is_set():
            elapsed = time.monotonic() - start_wall
            if duration_s is not None and elapsed >= duration_s:
                elapsed = duration_s
            self.clock.advance_to(start_sim + elapsed * self.speed)
            if duration_s is not None and elapsed >= duration_s:
                return
            self._stop.wait(self.slice_s)

    def start(self) -> None:
        if self._thread is not None:
            raise ConfigurationError("pacer already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="sim-pacer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
