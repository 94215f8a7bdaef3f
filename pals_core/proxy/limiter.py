"""An admission limiter whose limit can change while requests are in flight.

First come, first served: a request waits until fewer than ``limit`` are active and every request
that queued before it has been admitted. Lowering the limit below the active count stops
admissions until enough requests finish; nothing in flight is interrupted (vLLM's scheduler treats
``max_num_seqs`` the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from pals_core.errors import ConfigurationError
from pals_core.vllm_plugin.history import AdmissionHistory


def check_limit(limit: object) -> int:
    """``limit`` as a positive int, or :class:`ConfigurationError` naming what is allowed."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigurationError(f"max_num_seqs must be an integer >= 1, got {limit!r}")
    return limit


class AdmissionLimiter:
    """At most ``limit`` holders at once (asyncio; use from one event loop). Every change of
    the active count or the limit goes to :attr:`history`."""

    def __init__(self, limit: int, history: AdmissionHistory | None = None) -> None:
        self._limit = check_limit(limit)
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.history = history if history is not None else AdmissionHistory()
        self._record()

    def _record(self) -> None:
        self.history.record(self._active, len(self._waiters), self._limit)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def active(self) -> int:
        """Requests admitted and not yet released."""
        return self._active

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    def set_limit(self, limit: int) -> None:
        self._limit = check_limit(limit)
        self._record()
        self._admit_waiters()

    async def acquire(self) -> None:
        """Wait for a slot. Cancelling a waiter leaves the queue (or returns a slot it was just
        granted), so a client that gives up never holds a slot."""
        if self._active < self._limit and not self._waiters:
            self._active += 1
            self._record()
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(granted)
        try:
            await granted
        except BaseException:
            if granted.done() and not granted.cancelled():
                self.release()  # the slot arrived as we were cancelled: hand it on
            else:
                granted.cancel()
                # A release() between the cancellation and this line may have dropped it already.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(granted)
            raise

    def release(self) -> None:
        if self._active <= 0:
            raise RuntimeError("release() without a matching acquire()")
        self._active -= 1
        self._record()
        self._admit_waiters()

    def _admit_waiters(self) -> None:
        while self._waiters and self._active < self._limit:
            granted = self._waiters.popleft()
            if not granted.done():
                self._active += 1
                granted.set_result(None)
                self._record()
