"""An in-process broadcaster: one bounded asyncio queue per subscriber.

Publishing never blocks and never waits for a subscriber: an item goes into every queue with
``put_nowait``; a subscriber whose queue is full is dropped (marked ``overflowed`` and woken), so
its stream can tell the client to reconnect instead of slowing everyone else down.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


class Closed:
    """Sentinel delivered when the broadcaster shuts down."""


CLOSED = Closed()


class Subscription[T]:
    def __init__(self, broadcaster: Broadcaster[T], maxsize: int) -> None:
        self._broadcaster = broadcaster
        self._queue: asyncio.Queue[T | Closed] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False
        self.drop_reason: str | None = None
        self.token_id: int | None = None  # whose stream this is (revocation ends it)
        self.node_id: int | None = None  # which node's events it wants (rendered ahead)

    async def get(self, timeout_s: float | None = None) -> T | Closed | None:
        """The next item, :data:`CLOSED` at shutdown or when dropped, None on timeout."""
        if self.overflowed:
            return CLOSED
        if timeout_s is None:  # the hot path: no timer to arm and cancel per item
            item = await self._queue.get()
            return CLOSED if self.overflowed else item
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None
        return CLOSED if self.overflowed else item

    def offer(self, item: T | Closed) -> bool:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    def drop(self, reason: str) -> None:
        """Stop delivering and wake the reader (making room for the sentinel if needed)."""
        self.overflowed = True
        self.drop_reason = reason
        while not self.offer(CLOSED):
            self._queue.get_nowait()

    def close(self) -> None:
        self._broadcaster.unsubscribe(self)

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Broadcaster[T]:
    """Fan an item out to every subscriber. Use from the event loop's thread only."""

    def __init__(self, queue_size: int = 16) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription[T]] = set()
        self.dropped = 0

    def subscribe(self) -> Subscription[T]:
        sub: Subscription[T] = Subscription(self, self._queue_size)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription[T]) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribers(self) -> list[Subscription[T]]:
        return list(self._subscribers)

    def drop(self, sub: Subscription[T], reason: str) -> None:
        """End one subscriber's stream (its reader gets :data:`CLOSED` and ``reason``)."""
        self._subscribers.discard(sub)
        sub.drop(reason)

    def publish(self, item: T) -> None:
        for sub in list(self._subscribers):
            if not sub.offer(item):
                self.dropped += 1
                self._subscribers.discard(sub)
                sub.drop("slow consumer")

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.drop("shutdown")
        self._subscribers.clear()
