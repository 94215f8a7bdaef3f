"""Time as an injected dependency, so a simulated hour can run in seconds.

The runtime loop only ever calls ``clock.now_s()`` and ``clock.sleep(duration_s)``. With the real
clock these are ``time.monotonic`` and ``time.sleep``; with the simulator's clock, ``sleep``
advances the simulation by that much virtual time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_s(self) -> float:
        """Seconds on a monotonic clock (the origin is arbitrary)."""
        ...

    def sleep(self, duration_s: float) -> None:
        """Let ``duration_s`` seconds pass."""
        ...


class RealClock:
    """Wall-clock time."""

    def now_s(self) -> float:
        return time.monotonic()

    def sleep(self, duration_s: float) -> None:
        if duration_s > 0:
            time.sleep(duration_s)
