"""The in-process broadcaster: every subscriber gets every item; a slow one is dropped alone."""

from __future__ import annotations

import asyncio

from gridlink.streams.broadcaster import CLOSED, Broadcaster


def test_every_subscriber_gets_every_item_in_order() -> None:
    async def scenario() -> None:
        hub: Broadcaster[int] = Broadcaster(queue_size=4)
        subs = [hub.subscribe() for _ in range(3)]
        for item in (1, 2, 3):
            hub.publish(item)
        for sub in subs:
            assert [await sub.get(1) for _ in range(3)] == [1, 2, 3]
            assert await sub.get(0.01) is None  # nothing more: a timeout, not an item
        subs[0].close()
        hub.publish(4)
        assert hub.subscriber_count == 2
        assert await subs[1].get(1) == 4

    asyncio.run(scenario())


def test_a_slow_subscriber_is_dropped_without_holding_back_the_others() -> None:
    async def scenario() -> None:
        hub: Broadcaster[int] = Broadcaster(queue_size=2)
        slow, fast = hub.subscribe(), hub.subscribe()
        for item in range(5):
            hub.publish(item)
            assert await fast.get(1) == item
        assert hub.dropped == 1 and hub.subscriber_count == 1
        assert slow.overflowed and slow.drop_reason == "slow consumer"
        assert await slow.get(1) is CLOSED

    asyncio.run(scenario())


def test_close_wakes_every_subscriber() -> None:
    async def scenario() -> None:
        hub: Broadcaster[int] = Broadcaster(queue_size=2)
        sub = hub.subscribe()
        waiter = asyncio.create_task(sub.get(5))
        await asyncio.sleep(0.01)
        hub.close()
        assert await waiter is CLOSED
        assert sub.drop_reason == "shutdown"

    asyncio.run(scenario())
