"""The batch-limit scenario both knobs (the plugin and ``pals proxy``) must pass: 32 concurrent
streaming clients under a limit of 4, raised to 16 once some have finished."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tests.pals_core.vllm.load import Completion, RunningWatcher, stream_completion

CLIENTS = 32
MAX_TOKENS = 200
LOW, HIGH = 4, 16


@dataclass
class ScenarioResult:
    completions: list[Completion]
    watcher: RunningWatcher
    started_s: float
    requested_s: float
    """When the raise was asked for."""
    raised_s: float
    """When it was acknowledged."""
    ended_s: float
    remaining_at_raise: int
    """Requests not finished when the raise was asked for."""
    admitted: RunningWatcher
    """Where a raise shows first: vLLM's running count, or the proxy's admitted count."""

    def inconclusive(self) -> str | None:
        """Why this run could not show the limits at work (the sampler, starved on a loaded
        machine, missed the low limit or the raise), or None. Not a violation: retried."""
        w = self.watcher
        if self.remaining_at_raise <= LOW:
            return f"only {self.remaining_at_raise} requests were left to raise the limit for"
        if w.max_before(self.requested_s) < LOW:
            return "the sampler never saw the low limit reached"
        if self.admitted.first_above(LOW, self.raised_s) is None:
            return "the sampler saw nothing above the low limit after the raise"
        return None

    def check(self) -> None:
        """The Done-when assertions, with the figures in the messages."""
        w = self.watcher
        before = w.max_before(self.requested_s)
        after = w.max_after(self.raised_s)
        assert before <= LOW, f"{before} running under a limit of {LOW}"
        assert before == LOW, f"the limit of {LOW} was never reached: {w.samples}"
        assert after <= HIGH, f"{after} running under a limit of {HIGH}"
        first = self.admitted.first_above(LOW, self.raised_s)
        assert first is not None, (
            f"never more than {LOW} running after raising to {HIGH} at {self.raised_s}: "
            f"{self.admitted.samples}, {self.remaining_at_raise} left, ended at {self.ended_s}"
        )
        assert first - self.raised_s < 1.0, (
            f"the raise showed in /metrics {first - self.raised_s:.2f} s after it was made"
        )
        assert len(self.completions) == CLIENTS
        for c in self.completions:
            assert c.done_marker and c.finish_reason == "length", c
            assert c.completion_tokens == MAX_TOKENS and c.chunks >= 1, c


async def _run(
    api_url: str, metrics_url: str, set_limit: Callable[[int], None], admitted: RunningWatcher
) -> ScenarioResult:
    limits = httpx.Limits(max_connections=CLIENTS + 4)
    watcher = RunningWatcher(metrics_url)
    watcher.start()
    if admitted.metrics_url:
        admitted.start()
    while watcher.count < 1:  # the sampling process is up
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(timeout=180, limits=limits) as client:
        started_s = time.monotonic()
        tasks = [
            asyncio.create_task(stream_completion(client, api_url, MAX_TOKENS, f"node {i} power"))
            for i in range(CLIENTS)
        ]
        # Raise once a first wave has finished (28 remain: enough to fill 16 for two waves, so
        # a slow, loaded machine still samples the high limit).
        while sum(t.done() for t in tasks) < LOW or watcher.count < 3:
            await asyncio.sleep(0.01)
        requested_s = time.monotonic()
        remaining = sum(not t.done() for t in tasks)
        await asyncio.to_thread(set_limit, HIGH)
        raised_s = time.monotonic()  # the change acknowledged
        completions = await asyncio.gather(*tasks)
        ended_s = time.monotonic()
    watcher.stop()
    if admitted.metrics_url:
        admitted.stop()
    else:
        admitted = watcher
    return ScenarioResult(
        list(completions), watcher, started_s, requested_s, raised_s, ended_s, remaining, admitted
    )


def run_limit_scenario(
    api_url: str,
    metrics_url: str,
    set_limit: Callable[[int], None],
    admitted: RunningWatcher | None = None,
    attempts: int = 3,
) -> ScenarioResult:
    """Set the limit to 4, start the clients, raise it to 16 mid-run; every request completes.

    vLLM's running count (``metrics_url``) must stay within each limit; a raise must show
    within 1 s in ``admitted`` (default: that same running count)."""
    for _ in range(attempts):
        set_limit(LOW)
        watcher = RunningWatcher(admitted.metrics_url, admitted.metric) if admitted else None
        result = asyncio.run(_run(api_url, metrics_url, set_limit, watcher or RunningWatcher("")))
        w = result.watcher
        violated = w.max_before(result.requested_s) > LOW or w.max_after(result.raised_s) > HIGH
        if violated or result.inconclusive() is None:
            break  # a violation or a conclusive run: check() judges it
    return result
