"""The facility page's live feed: one computation per tick for every open page.

While at least one page listens, a task reads :func:`facility_now` every ``period_s`` (in a
worker thread: the ORM is synchronous) and broadcasts it as an SSE ``facility`` event; a new
budget version (from the allocation feed) is announced at once as a ``budget`` event and
triggers an early tick. With no page open nothing is computed, so many pages cost one query
set per tick, not one per page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from gridlink.db.engine import session_scope
from gridlink.settings import GridlinkSettings
from gridlink.streams.broadcaster import Broadcaster, Subscription
from gridlink.streams.feed import AllocationFeed
from gridlink.streams.sse import format_event
from gridlink.web.facility import FacilityNow, facility_now

log = logging.getLogger(__name__)


class FacilityFeed:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: GridlinkSettings,
        allocations: AllocationFeed,
        *,
        period_s: float,
        queue_size: int = 8,
    ) -> None:
        self._factory = factory
        self._settings = settings
        self._allocations = allocations
        self._period_s = period_s
        self._broadcaster: Broadcaster[bytes] = Broadcaster(queue_size)
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.latest: FacilityNow | None = None
        self.ticks = 0

    async def start(self) -> None:
        self._wake = asyncio.Event()
        with contextlib.suppress(Exception):  # no database yet: the first tick says so
            await self._allocations.refresh()
        self._allocations.add_observer(self._on_version)
        self._task = asyncio.create_task(self._run(), name="facility-feed")

    async def stop(self) -> None:
        self._broadcaster.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(self) -> Subscription[bytes]:
        sub = self._broadcaster.subscribe()
        if self._wake is not None:
            self._wake.set()  # a new page gets a fresh reading now, not at the next tick
        return sub

    @property
    def subscriber_count(self) -> int:
        return self._broadcaster.subscriber_count

    def _on_version(self, version_id: int) -> None:
        data = json.dumps({"version_id": version_id})
        self._broadcaster.publish(format_event(data, event="budget", event_id=str(version_id)))
        if self._wake is not None:
            self._wake.set()

    def read_now(self) -> FacilityNow:
        """The facility now (blocking: call from a worker thread)."""
        with session_scope(self._factory) as session:
            return facility_now(
                session,
                now=datetime.now(UTC),
                settings=self._settings,
                allocations=self._allocations.latest,
            )

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if self._broadcaster.subscriber_count:
                try:
                    current = await asyncio.to_thread(self.read_now)
                except Exception:
                    log.exception("could not read the facility for the live page feed")
                else:
                    self.latest = current
                    self.ticks += 1
                    payload = json.dumps(current.as_json(), separators=(",", ":"))
                    self._broadcaster.publish(format_event(payload, event="facility"))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._period_s)
