"""A node's three conversations with the gateway, as asyncio tasks.

- **Registration / heartbeat**: ``POST /v1/nodes`` at start (retried until it works) and every
  ``heartbeat_s``; the answer carries the node's id.
- **Allocation stream**: connect, take the whole trajectory, then each new version; resume with
  ``Last-Event-ID`` (the last version taken), after the server's ``retry`` hint on a
  ``reconnect`` event, or after a jittered exponential backoff on an error. A trajectory that
  fails :func:`~pals_core.agent.trajectory.parse_trajectory` is refused with a log line naming
  the field; the last good one stays.
- **Telemetry**: every ``telemetry_batch_s``, the node's oldest spooled samples in order, in
  batches; deleted from the spool only once the gateway has them.

Every successful exchange counts as contact for the lease. A refused token
(:class:`~pals_core.agent.gateway.TokenRejectedError`) ends the link: nothing will fix it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from pals_core.agent.gateway import (
    GatewayClient,
    GatewayUnavailableError,
    InputRefusedError,
    StreamEvent,
)
from pals_core.agent.node import NodeControl
from pals_core.agent.spool import TelemetrySpool
from pals_core.agent.trajectory import TrajectoryError, parse_trajectory
from pals_core.errors import ConfigurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkConfig:
    heartbeat_s: float = 20.0
    telemetry_batch_s: float = 2.0
    telemetry_max_batch: int = 1000
    read_timeout_s: float = 45.0
    """A stream silent this long is dead (the gateway sends a heartbeat every 15 s)."""
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    start_spread_s: float = 0.0
    """Each node waits a random time up to this before registering: a fleet that starts at
    once does not ask the gateway for hundreds of budget recomputes in the same second."""

    def __post_init__(self) -> None:
        for name in ("heartbeat_s", "telemetry_batch_s", "read_timeout_s", "initial_backoff_s"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_backoff_s < self.initial_backoff_s or self.telemetry_max_batch < 1:
            raise ConfigurationError("max_backoff_s must be >= initial_backoff_s, batch >= 1")


class Backoff:
    """Exponential, jittered (x0.5 to x1.5) so nodes cut off together do not return together."""

    def __init__(self, config: LinkConfig) -> None:
        self._config = config
        self._next_s = config.initial_backoff_s

    def reset(self) -> None:
        self._next_s = self._config.initial_backoff_s

    def next_s(self) -> float:
        delay = self._next_s * random.uniform(0.5, 1.5)
        self._next_s = min(self._next_s * 2, self._config.max_backoff_s)
        return delay


class NodeLink:
    def __init__(
        self,
        node: NodeControl,
        gateway: GatewayClient,
        spool: TelemetrySpool,
        config: LinkConfig,
        wall_s: Callable[[], float] = time.time,
        register_gate: asyncio.Semaphore | None = None,
        streams_open: asyncio.Event | None = None,
    ) -> None:
        self.node = node
        self.gateway = gateway
        self.spool = spool
        self.config = config
        self._wall_s = wall_s
        self._gate = register_gate or asyncio.Semaphore(1)
        self._streams_open = streams_open
        self.registered = asyncio.Event()
        self.last_event_id: str | None = None

    async def run(self) -> None:
        """Register (retrying), then stream, heartbeat and send telemetry until cancelled."""
        await asyncio.sleep(random.uniform(0.0, self.config.start_spread_s))
        await self._register_until_done()
        self.registered.set()
        if self._streams_open is not None:  # a fleet registers every node before streaming
            await self._streams_open.wait()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._heartbeats())
            group.create_task(self._stream())
            group.create_task(self._telemetry())

    async def _register_until_done(self) -> None:
        backoff = Backoff(self.config)
        while True:
            try:
                await self._register()
                return
            except GatewayUnavailableError as err:
                delay = backoff.next_s()
                log.warning("%s: registration failed (%s); retry in %.1f s", self._name, err, delay)
                await asyncio.sleep(delay)

    @property
    def _name(self) -> str:
        return self.node.spec.name

    async def _register(self) -> None:
        async with self._gate:  # registrations of one process go a few at a time
            node_id = await self.gateway.register(self.node.spec.registration())
        if self.node.node_id is None:
            log.info("%s: registered as node %d", self._name, node_id)
        self.node.node_id = node_id
        self.node.contact(self._wall_s())

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s * random.uniform(0.9, 1.1))
            try:
                await self._register()
            except GatewayUnavailableError as err:
                log.info("%s: heartbeat failed: %s", self._name, err)

    async def _stream(self) -> None:
        backoff = Backoff(self.config)
        status = self.node.status
        while True:
            retry_s: float | None = None
            node_id = self.node.node_id
            assert node_id is not None
            stream = self.gateway.stream(node_id, self.last_event_id, self.config.read_timeout_s)
            try:
                first = True
                async with contextlib.aclosing(stream) as events:
                    async for event in events:
                        status.stream_connected = True
                        backoff.reset()
                        self.node.contact(self._wall_s())
                        if event.event == "allocation":
                            self._take(node_id, event, first_of_connection=first)
                            first = False
                        elif event.event == "reconnect":
                            retry_s = (event.retry_ms or 0) / 1000 * random.uniform(1.0, 1.5)
                            break
            except GatewayUnavailableError as err:
                log.info("%s: allocation stream lost: %s", self._name, err)
            status.stream_connected = False
            await asyncio.sleep(retry_s if retry_s is not None else backoff.next_s())

    def _take(self, node_id: int, event: StreamEvent, *, first_of_connection: bool = False) -> None:
        """Validate and hand over a trajectory. The first of a connection is taken whatever its
        version: the gateway sends it only when it differs from ``Last-Event-ID``, so an older
        one means the gateway's history restarted (a rebuilt database)."""
        try:
            trajectory = parse_trajectory(json.loads(event.data), node_id)
        except (TrajectoryError, ValueError) as err:
            self.node.status.rejected_trajectories += 1
            field = err.field if isinstance(err, TrajectoryError) else "data"
            log.warning(
                "%s: refused trajectory (event id %s), field %s: %s; keeping version %s",
                self._name,
                event.event_id,
                field,
                err,
                self.node.status.version_id,
            )
            return
        if self.node.accept_trajectory(trajectory, self._wall_s(), any_version=first_of_connection):
            self.last_event_id = str(trajectory.version_id)

    async def _telemetry(self) -> None:
        backoff = Backoff(self.config)
        delay_s = self.config.telemetry_batch_s * random.uniform(0.5, 1.0)
        while True:
            await asyncio.sleep(delay_s)
            delay_s = self.config.telemetry_batch_s
            try:
                await self.flush()
                backoff.reset()
            except GatewayUnavailableError as err:
                delay_s = max(delay_s, backoff.next_s())
                log.info("%s: telemetry not sent (%s); retry in %.1f s", self._name, err, delay_s)

    async def flush(self) -> None:
        """Send every spooled sample of this node, oldest first."""
        node_id = self.node.node_id
        while node_id is not None:
            seq, samples = self.spool.oldest(self._name, self.config.telemetry_max_batch)
            if not samples:
                return
            try:
                await self.gateway.post_telemetry(node_id, samples)
            except InputRefusedError as err:  # would be refused forever: drop, count, say so
                log.error(
                    "%s: gateway refused %d samples, dropped: %s", self._name, len(samples), err
                )
                self.spool.discard(self._name, seq, len(samples))
                continue
            self.spool.ack(self._name, seq)
            self.node.contact(self._wall_s())
