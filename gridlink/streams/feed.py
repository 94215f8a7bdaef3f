"""The process's allocation feed: budget version ids in, loaded snapshots out to every stream.

Version ids arrive from any thread (the NOTIFY listener, the scheduler, request threads) through
:meth:`AllocationFeed.publish_threadsafe`. One task on the event loop loads each new version once
(in a worker thread, since the ORM is synchronous) and broadcasts the snapshot; versions only
move forward, so a duplicate or late notification is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from gridlink.db.engine import session_scope
from gridlink.streams import repository
from gridlink.streams.broadcaster import Broadcaster, Subscription
from gridlink.streams.snapshot import Heartbeat, VersionSnapshot

log = logging.getLogger(__name__)


class AllocationFeed:
    def __init__(
        self, factory: sessionmaker[Session], *, queue_size: int = 16, heartbeat_s: float = 15.0
    ) -> None:
        self._factory = factory
        self._heartbeat_s = heartbeat_s
        self._broadcaster: Broadcaster[VersionSnapshot | Heartbeat] = Broadcaster(queue_size)
        self._ticker: asyncio.Task[None] | None = None
        self._observers: list[Callable[[int], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._advance_lock: asyncio.Lock | None = None
        self.latest: VersionSnapshot | None = None

    # -- lifecycle (on the event loop) ------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        self._advance_lock = asyncio.Lock()
        self._task = asyncio.create_task(self._run(), name="allocation-feed")
        self._ticker = asyncio.create_task(self._tick(), name="allocation-heartbeat")

    async def stop(self) -> None:
        self._broadcaster.close()
        for task in (self._task, self._ticker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._ticker = None

    def add_observer(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(version_id)`` (on the loop; keep it cheap) for every new version."""
        self._observers.append(callback)

    # -- input ------------------------------------------------------------------------------------

    def publish_threadsafe(self, version_id: int) -> None:
        """Announce a committed version, from any thread."""
        loop, inbox = self._loop, self._inbox
        if loop is None or inbox is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(inbox.put_nowait, version_id)

    def refresh_threadsafe(self) -> None:
        """Schedule :meth:`refresh` from any thread (after a LISTEN reconnect)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(self.refresh(), loop)

    async def refresh(self) -> VersionSnapshot | None:
        """Catch up with the database (a notification may have been missed); the latest."""
        version_id = await asyncio.to_thread(self._latest_version_id)
        if version_id is not None:
            await self._advance_to(version_id)
        return self.latest

    # -- output -----------------------------------------------------------------------------------

    def subscribe(self) -> Subscription[VersionSnapshot | Heartbeat]:
        return self._broadcaster.subscribe()

    @property
    def subscriber_count(self) -> int:
        return self._broadcaster.subscriber_count

    @property
    def dropped_subscribers(self) -> int:
        return self._broadcaster.dropped

    # -- internals --------------------------------------------------------------------------------

    async def _tick(self) -> None:
        """One heartbeat for every stream every ``heartbeat_s``: one timer per process, not one
        per stream per wait (streams also check their lifetime at each tick)."""
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await self.end_revoked()
            self._broadcaster.publish(Heartbeat.now())

    async def end_revoked(self) -> int:
        """End every stream whose token was revoked or deleted since it connected (one query
        for all streams, at each heartbeat). Returns how many were ended."""
        subscribers = [s for s in self._broadcaster.subscribers() if s.token_id is not None]
        if not subscribers:
            return 0
        token_ids = {s.token_id for s in subscribers if s.token_id is not None}
        try:
            live = await asyncio.to_thread(self._live_tokens, token_ids)
        except Exception:
            log.exception("could not check the streams' tokens; checking again next heartbeat")
            return 0
        ended = [s for s in subscribers if s.token_id not in live]
        for sub in ended:
            self._broadcaster.drop(sub, "revoked")
        return len(ended)

    def _live_tokens(self, token_ids: set[int]) -> set[int]:
        with session_scope(self._factory) as session:
            return repository.live_token_ids(session, token_ids)

    async def _run(self) -> None:
        assert self._inbox is not None
        while True:
            version_id = await self._inbox.get()
            try:
                await self._advance_to(version_id)
            except Exception:
                log.exception("could not load budget version %s for the streams", version_id)

    async def advance_to(self, version_id: int) -> VersionSnapshot | None:
        """Load and broadcast ``version_id`` unless a version as new is already known; returns
        the latest snapshot."""
        await self._advance_to(version_id)
        return self.latest

    async def _advance_to(self, version_id: int) -> None:
        assert self._advance_lock is not None
        async with self._advance_lock:
            if self.latest is not None and version_id <= self.latest.version_id:
                return
            watched = {s.node_id for s in self._broadcaster.subscribers()}
            snapshot = await asyncio.to_thread(self._load, version_id, watched)
            if snapshot is None:
                return
            self.latest = snapshot
            self._broadcaster.publish(snapshot)
        for observer in self._observers:
            try:
                observer(version_id)
            except Exception:
                log.exception("budget version observer failed")

    def _latest_version_id(self) -> int | None:
        with session_scope(self._factory) as session:
            return repository.latest_version_id(session)

    def _load(self, version_id: int, watched: set[int | None]) -> VersionSnapshot | None:
        """Load a version and render the events of the nodes someone follows (in this thread,
        so the event loop only writes bytes); others render on first use."""
        with session_scope(self._factory) as session:
            snapshot = repository.load_snapshot(session, version_id, now=datetime.now(UTC))
        if snapshot is not None:
            snapshot.prerender({n for n in watched if n is not None})
        return snapshot
