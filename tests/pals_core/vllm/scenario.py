"""The batch-limit scenario both knobs (the plugin and ``pals proxy``) must pass: 32 concurrent
streaming clients under a limit of 4, raised to 16 while they run.

Each request streams ``MAX_TOKENS`` tokens with ``ignore_eos``, so it runs for seconds on the tiny
model: a running count holds long enough to be seen in vLLM's ``/metrics`` even when the sampler
stalls for seconds on a loaded machine. The limit is raised once the sampler has seen the low
limit reached (not after a fixed time), and when the raise took effect comes from the knob's own
admission history (timestamped on the node's monotonic clock), not from when a sampler happened
to look: within 1 s of the knob setting the limit and of the control call returning. Nothing
here is retried.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from pals_core.vllm_plugin.history import Entry
from tests.pals_core.vllm.load import Completion, RunningWatcher, stream_completion

CLIENTS = 32
MAX_TOKENS = 1500
"""With the tiny model a stream lasts several seconds (servers.MAX_MODEL_LEN bounds it)."""
STREAM_INTERVAL = 8
"""Tokens per streamed chunk (vLLM's ``stream_interval``): less relaying on a busy machine."""
LOW, HIGH = 4, 16
LOW_SEEN = 3
"""Samples of vLLM's /metrics that must show the low limit reached before the raise."""
EFFECT_WITHIN_S = 1.0


@dataclass
class ScenarioResult:
    completions: list[Completion]
    watcher: RunningWatcher
    """vLLM's running count from its own /metrics."""
    history: list[Entry]
    """The knob's admission history (running or admitted, limit in force)."""
    low_set_s: float
    requested_s: float
    """When the raise was asked for."""
    raised_s: float
    """When the control call returned."""
    ended_s: float

    def acknowledged_s(self) -> float | None:
        """When the knob set the high limit (its history's entry for the change)."""
        return next(
            (t for t, _, _, limit in self.history if t >= self.low_set_s and limit == HIGH), None
        )

    def effect_s(self) -> float | None:
        """When the knob first ran more than the low limit under the high one (its record)."""
        return next(
            (
                t
                for t, running, _, limit in self.history
                if t >= self.low_set_s and limit == HIGH and running > LOW
            ),
            None,
        )

    def figures(self) -> str:
        effect = self.effect_s()
        seen = self.watcher.first_above(LOW, self.raised_s)
        ack = self.acknowledged_s()
        return (
            f"effect {_ms(effect, ack or self.requested_s)} after the knob set the limit, "
            f"{_ms(effect, self.raised_s)} after the control call returned, control call "
            f"{(self.raised_s - self.requested_s) * 1000:.0f} ms, /metrics showed it "
            f"{_ms(seen, self.raised_s)} after the call returned; sampler's longest gap "
            f"{self.watcher.longest_gap_s():.2f} s over {len(self.watcher.samples)} samples; "
            f"run {self.ended_s - self.low_set_s:.1f} s"
        )

    def check(self) -> None:
        """The Done-when assertions, with the figures in the messages."""
        w = self.watcher
        before = w.max_before(self.requested_s)
        after = w.max_after(self.raised_s)
        assert before <= LOW, f"{before} running under a limit of {LOW} in /metrics"
        assert after <= HIGH, f"{after} running under a limit of {HIGH} in /metrics"
        assert before == LOW, f"/metrics never showed the limit of {LOW} reached: {w.samples}"
        for t, running, _, limit in self.history:
            if t >= self.low_set_s and limit in (LOW, HIGH):
                assert running <= limit, f"{running} running under a limit of {limit} at {t}"
        effect, ack = self.effect_s(), self.acknowledged_s()
        assert ack is not None, f"the knob has no record of the limit {HIGH}: {self.history}"
        assert effect is not None, f"never more than {LOW} ran under {HIGH}: {self.history}"
        # Took effect within 1 s of being made (the knob's acknowledgement) and within 1 s of
        # the control call returning; the call's own latency is in the figures.
        assert effect - ack < EFFECT_WITHIN_S, f"too slow: {self.figures()}"
        assert effect - self.raised_s < EFFECT_WITHIN_S, f"too slow: {self.figures()}"
        assert w.first_above(LOW, self.raised_s) is not None, (
            f"/metrics never showed more than {LOW} running after the raise: {self.figures()}"
        )
        assert len(self.completions) == CLIENTS
        for c in self.completions:
            assert c.done_marker and c.finish_reason == "length", c
            assert c.completion_tokens == MAX_TOKENS and c.chunks >= 1 and c.text, c


def _ms(value: float | None, since_s: float) -> str:
    return "never" if value is None else f"{(value - since_s) * 1000:.0f} ms"


async def _wait_low_reached(watcher: RunningWatcher, timeout_s: float = 120.0) -> None:
    """Until ``LOW_SEEN`` samples of /metrics showed ``LOW`` running."""
    seen, counted, deadline = 0, watcher.count, time.monotonic() + timeout_s
    while seen < LOW_SEEN:
        assert time.monotonic() < deadline, f"/metrics did not show {LOW} running in {timeout_s} s"
        await asyncio.sleep(0.01)
        if watcher.count != counted:
            counted = watcher.count
            seen += watcher.last == LOW
            assert watcher.last <= LOW, f"{watcher.last} running under a limit of {LOW}"


async def _run(
    api_url: str,
    metrics_url: str,
    set_limit: Callable[[int], None],
    history: Callable[[], list[Entry]],
) -> ScenarioResult:
    limits = httpx.Limits(max_connections=CLIENTS + 4, keepalive_expiry=1.0)  # see load.KEEPALIVE
    watcher = RunningWatcher(metrics_url)
    watcher.start()
    while watcher.count < 1:  # the sampling process is up
        await asyncio.sleep(0.01)
    low_set_s = time.monotonic()
    await asyncio.to_thread(set_limit, LOW)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        tasks = [
            asyncio.create_task(
                stream_completion(client, api_url, MAX_TOKENS, f"node {i} power", STREAM_INTERVAL)
            )
            for i in range(CLIENTS)
        ]
        try:
            await _wait_low_reached(watcher)
        except AssertionError:
            watcher.stop()
            raise
        requested_s = time.monotonic()
        await asyncio.to_thread(set_limit, HIGH)
        raised_s = time.monotonic()
        completions = await asyncio.gather(*tasks)
        ended_s = time.monotonic()
    watcher.stop()
    record = await asyncio.to_thread(history)
    return ScenarioResult(
        list(completions), watcher, record, low_set_s, requested_s, raised_s, ended_s
    )


def run_limit_scenario(
    api_url: str,
    metrics_url: str,
    set_limit: Callable[[int], None],
    history: Callable[[], list[Entry]],
) -> ScenarioResult:
    """Set the limit to 4, start the clients, raise it to 16 once vLLM's /metrics shows 4
    running; every request completes. vLLM's running count (``metrics_url``) and the knob's
    ``history`` must stay within each limit, and the raise must take effect in the knob within
    ``EFFECT_WITHIN_S`` of being asked for."""
    return asyncio.run(_run(api_url, metrics_url, set_limit, history))
