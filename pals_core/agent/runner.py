"""Run nodes under the agent: a control thread ticks them, an event loop talks to the gateway.

The control thread keeps to its tick deadlines whatever the network does (a gateway gone, a
slow answer): the controller only ever reads the trajectory it already holds. Every second the
event loop moves the nodes' new telemetry samples to the on-disk spool (one transaction for
all), and each node's :class:`~pals_core.agent.link.NodeLink` sends them from there.

:meth:`Agent.run` returns an exit code: 0 after :meth:`Agent.stop` (or Ctrl-C),
:data:`EXIT_TOKEN_REJECTED` when the gateway refused the token.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

import httpx

from pals_core.agent.gateway import GatewayClient, InputRefusedError, TokenRejectedError
from pals_core.agent.link import LinkConfig, NodeLink
from pals_core.agent.node import NodeControl
from pals_core.agent.spool import TelemetrySpool

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_TOKEN_REJECTED = 3
REGISTRATIONS_IN_FLIGHT = 4
"""Registrations (each may make the gateway recompute the budget) in flight at once."""
REQUESTS_IN_FLIGHT = 8
"""Requests (registration, telemetry) in flight at once from one agent process."""
STREAMS_WAIT_S = 60.0
LATENESS_BOUNDS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
"""Bucket bounds of :attr:`ControlThread.lateness` (how late ticks started)."""


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a fleet's hundreds of streams and requests
    cost it less CPU than the stdlib's selector loop), else the default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def next_slot(slot_s: float, now_s: float, tick_s: float) -> tuple[float, int]:
    """The slot of the tick after the one of slot ``slot_s``, at monotonic time ``now_s``, and
    how many slots are skipped on the way: the next slot on the grid, or, when that has passed
    by a whole tick or more, the latest slot that has begun (the ones before it skipped, not
    raced through). A slot in the past means: tick at once, late."""
    slot_s += tick_s
    behind_s = now_s - slot_s
    if behind_s < tick_s:
        return slot_s, 0
    skipped = math.floor(behind_s / tick_s)
    return slot_s + skipped * tick_s, skipped


class ControlThread:
    """Ticks every node every ``tick_s`` on ``now_s`` (a monotonic clock; for simulated nodes
    one that advances the simulation to the present first). ``counters_age_s(mono_s)``, when
    known (a simulated fleet), is how long ago the GPUs' energy counters were refreshed: the
    telemetry then measures power over the time the counters cover.

    Ticks keep to a fixed grid. A tick that starts after its slot on the grid (the previous one
    overran, or the process got no CPU for a while) runs at once, so a fleet whose ticks cost
    less than ``tick_s`` on average keeps ``1 / tick_s`` ticks a second through an occasional
    long one; slots a whole tick or more in the past are skipped (counted in
    :attr:`skipped_ticks`), not raced through. :attr:`lateness` counts the ticks by how late
    they started (:data:`LATENESS_BOUNDS_S`); a tick more than ``late_after_s`` (a tenth of a
    tick by default) after its slot counts in :attr:`late_ticks`."""

    def __init__(
        self,
        nodes: Sequence[NodeControl],
        tick_s: float,
        now_s: Callable[[], float],
        wall_s: Callable[[], float] = time.time,
        counters_age_s: Callable[[float], float] | None = None,
        late_after_s: float | None = None,
    ) -> None:
        self.nodes = nodes
        self.tick_s = tick_s
        self.late_after_s = tick_s / 10 if late_after_s is None else late_after_s
        self._now_s = now_s
        self._wall_s = wall_s
        self._counters_age_s = counters_age_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pals-control", daemon=True)
        self.ticks = 0
        self.late_ticks = 0
        """Ticks that started more than ``late_after_s`` after their slot."""
        self.skipped_ticks = 0
        """Slots left out: the loop was a whole tick or more behind."""
        self.lateness = [0] * (len(LATENESS_BOUNDS_S) + 1)
        """Ticks by start delay: ``lateness[i]`` counts delays up to ``LATENESS_BOUNDS_S[i]``
        (the last, longer ones)."""
        self.max_lateness_s = 0.0
        self.clock_cpu_s = 0.0
        """CPU time spent reading the clock (for a simulated fleet: running the simulation)."""
        self.nodes_cpu_s = 0.0
        """CPU time spent ticking the nodes (observe, control, apply, telemetry)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic()
        failing: set[str] = set()
        while not self._stop.is_set():
            self._count_lateness(time.monotonic() - deadline)
            cpu0 = time.thread_time()
            read_s = self._wall_s()  # a simulated fleet's clock runs the simulation up to the
            mono_s = self._now_s()  # time it is read: its counters are dated from ``read_s``
            wall_s = self._wall_s()
            age = self._counters_age_s
            counters_s = None if age is None else read_s - age(mono_s)
            cpu1 = time.thread_time()
            for node in self.nodes:
                try:
                    node.tick(mono_s, wall_s, counters_s)
                    failing.discard(node.spec.name)
                except Exception:
                    if node.spec.name not in failing:  # one traceback per failure spell
                        log.exception("%s: control tick failed", node.spec.name)
                    failing.add(node.spec.name)
            self.ticks += 1
            self.clock_cpu_s += cpu1 - cpu0
            self.nodes_cpu_s += time.thread_time() - cpu1
            now_s = time.monotonic()
            deadline, skipped = next_slot(deadline, now_s, self.tick_s)
            self.skipped_ticks += skipped
            self._stop.wait(max(0.0, deadline - now_s))

    def _count_lateness(self, late_s: float) -> None:
        late_s = max(0.0, late_s)
        self.lateness[bisect.bisect_left(LATENESS_BOUNDS_S, late_s)] += 1
        self.max_lateness_s = max(self.max_lateness_s, late_s)
        if late_s > self.late_after_s:
            self.late_ticks += 1


class Agent:
    def __init__(
        self,
        nodes: Sequence[NodeControl],
        *,
        gateway_url: str,
        tokens: Callable[[str], str | None],
        spool: TelemetrySpool,
        link_config: LinkConfig,
        control: ControlThread,
    ) -> None:
        self.nodes = nodes
        self.gateway_url = gateway_url
        self.tokens = tokens
        self.spool = spool
        self.link_config = link_config
        self.control = control
        self.links: list[NodeLink] = []
        self.exit_code = EXIT_OK
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_requested = False

    def run(self) -> int:
        """Block until :meth:`stop`, Ctrl-C or a refused token; the exit code."""
        # What exists now (models, a fleet's simulators) lives as long as the agent: out of the
        # cyclic collector's sight, its full collections no longer stall a tick for 100s of ms.
        gc.freeze()
        self.control.start()
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._main())
        except KeyboardInterrupt:
            pass
        finally:
            self.control.stop()
            self._spool_new_samples()
        return self.exit_code

    def start_in_thread(self) -> threading.Thread:
        """:meth:`run` on a daemon thread (tests, benchmarks, embedding); :meth:`stop` ends it."""
        thread = threading.Thread(target=self.run, name="pals-agent", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """From any thread."""
        self._stop_requested = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested:
            self._stopping.set()
        stream_limits = httpx.Limits(
            max_connections=len(self.nodes) + 4, max_keepalive_connections=None
        )
        request_limits = httpx.Limits(max_connections=REQUESTS_IN_FLIGHT + 4)
        gate = asyncio.Semaphore(REGISTRATIONS_IN_FLIGHT)
        requests = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
        streams_open = asyncio.Event()
        async with (
            httpx.AsyncClient(timeout=10.0, limits=request_limits, trust_env=False) as http,
            httpx.AsyncClient(timeout=10.0, limits=stream_limits, trust_env=False) as streams,
        ):
            self.links = [
                NodeLink(
                    node,
                    GatewayClient(
                        self.gateway_url, self.tokens(node.spec.name), http, requests, streams
                    ),
                    self.spool,
                    self.link_config,
                    register_gate=gate,
                    streams_open=streams_open,
                )
                for node in self.nodes
            ]
            tasks = [asyncio.create_task(self._guard(link.run())) for link in self.links]
            tasks.append(asyncio.create_task(self._spool_loop()))
            tasks.append(asyncio.create_task(self._open_streams(streams_open)))
            await self._stopping.wait()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._flush_all()

    async def _guard(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        try:
            await work
        except* TokenRejectedError as group:
            log.error("%s", group.exceptions[0])
            self.exit_code = EXIT_TOKEN_REJECTED
            assert self._stopping is not None
            self._stopping.set()
        except* InputRefusedError as group:  # e.g. a registration the gateway will never take
            log.error("a node link stopped: %s", group.exceptions[0])

    async def _open_streams(self, streams_open: asyncio.Event) -> None:
        """Streams open once every node has registered (or after ``STREAMS_WAIT_S``): each
        registration may make a budget version, which every open stream would receive."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.link_config.start_spread_s + STREAMS_WAIT_S):
                await asyncio.gather(*(link.registered.wait() for link in self.links))
        streams_open.set()

    async def _spool_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._spool_new_samples()

    def _spool_new_samples(self) -> None:
        self.spool.append({node.spec.name: node.take_samples() for node in self.nodes})

    async def _flush_all(self) -> None:
        """On the way out, send what the spool holds (briefly; the rest waits on disk)."""
        self._spool_new_samples()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3.0):
                await asyncio.gather(*(link.flush() for link in self.links), return_exceptions=True)
