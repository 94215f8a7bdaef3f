"""Pacing a simulated node to wall time for ``pals sim-node``."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class Pacer:
    """Keeps the node's simulated clock one step ahead of wall time, so every token's emission
    time is known shortly before it is due and a stream can send it on time.

    Everything touching the node runs on the event loop, so the simulator needs no locks. If the
    host falls behind by more than ``max_catchup_s`` (an overloaded machine), the simulation
    slows down rather than jumping, and ``lag_s`` counts the simulated time given up."""

    def __init__(self, node: Any, step_s: float, max_catchup_s: float) -> None:
        self.node = node
        self.step_s = step_s
        self.max_catchup_s = max_catchup_s
        self.lag_s = 0.0
        self._offset_s = node.clock.now_s() - time.monotonic()  # simulated minus wall time
        self._stepped = asyncio.Event()

    def wall_s(self, sim_s: float) -> float:
        """The ``time.monotonic()`` at which simulated time ``sim_s`` is due."""
        return sim_s - self._offset_s

    def step(self) -> None:
        clock = self.node.clock
        self._offset_s = max(self._offset_s, clock.now_s() - time.monotonic() - self.step_s)
        target_s = time.monotonic() + self._offset_s + self.step_s
        behind_s = target_s - clock.now_s()
        if behind_s > self.max_catchup_s:
            shift_s = behind_s - self.max_catchup_s
            self._offset_s -= shift_s
            self.lag_s += shift_s
            target_s -= shift_s
        clock.advance_to(target_s)
        stepped, self._stepped = self._stepped, asyncio.Event()
        stepped.set()

    async def run(self) -> None:
        self._offset_s = self.node.clock.now_s() - time.monotonic()
        while True:
            self.step()
            await asyncio.sleep(self.step_s)

    async def next_step(self) -> None:
        await self._stepped.wait()
