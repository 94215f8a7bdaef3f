"""Load for the real-server tests: concurrent streaming clients, and a watcher that samples
``vllm:num_requests_running`` from vLLM's own ``/metrics``."""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.pals_core.vllm.servers import SERVED_MODEL


@dataclass
class Completion:
    text: str = ""
    chunks: int = 0
    finish_reason: str | None = None
    completion_tokens: int | None = None
    done_marker: bool = False
    finished_at_s: float = 0.0


async def stream_completion(
    client: httpx.AsyncClient,
    base_url: str,
    max_tokens: int,
    prompt: str = "power budget",
    stream_interval: int | None = None,
) -> Completion:
    """One streamed ``/v1/completions`` request, checked chunk by chunk as an OpenAI client
    would read it. ``stream_interval``: vLLM's request extension sending N tokens per chunk
    (fewer chunks to relay on a loaded machine)."""
    body: dict[str, Any] = {
        "model": SERVED_MODEL,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
        "temperature": 0.0,
        "stream_options": {"include_usage": True},
    }
    if stream_interval is not None:
        body["stream_interval"] = stream_interval
    result = Completion()
    async with client.stream("POST", base_url + "/v1/completions", json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                result.done_marker = True
                continue
            chunk = json.loads(data)
            assert chunk["object"] == "text_completion" and chunk["model"] == SERVED_MODEL
            for choice in chunk["choices"]:
                result.text += choice["text"]
                result.chunks += 1
                result.finish_reason = choice["finish_reason"] or result.finish_reason
            if chunk.get("usage"):
                result.completion_tokens = chunk["usage"]["completion_tokens"]
    result.finished_at_s = time.monotonic()
    return result


RUNNING = "vllm:num_requests_running"
KEEPALIVE = httpx.Limits(max_connections=64, keepalive_expiry=1.0)
"""Idle connections are dropped after 1 s, well before vLLM's server closes them (uvicorn's
keep-alive of 5 s, httpx's default expiry too: a reused connection could meet the server's
close and fail with a ReadError)."""


def gauge_value(metrics_text: str, name: str = RUNNING) -> float:
    """Gauge ``name`` summed over its label sets (a regex: the full parser is slow)."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    values = pattern.findall(metrics_text)
    assert values, f"{name} is missing from /metrics"
    return sum(float(v) for v in values)


def _watch(
    metrics_url: str, metric: str, period_s: float, stop: Any, count: Any, last: Any, out: Any
) -> None:
    samples = []
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            sent_s = time.monotonic()
            value = gauge_value(client.get(metrics_url).text, metric)
            samples.append((sent_s, time.monotonic(), value))
            last.value = value
            count.value = len(samples)
            stop.wait(period_s)
    out.send(samples)


@dataclass
class RunningWatcher:
    """Samples the running count every ``period_s`` into ``samples``: (sent_s, received_s,
    running); the value held somewhere between the two times. It samples from a process of its
    own, so that the clients' work in this one cannot delay it (``time.monotonic`` is the same
    clock across processes on Linux)."""

    metrics_url: str
    metric: str = RUNNING
    period_s: float = 0.02
    samples: list[tuple[float, float, float]] = field(default_factory=list)

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop, self._count = context.Event(), context.Value("i", 0)
        self._last = context.Value("d", 0.0)
        self._receive, send = context.Pipe(duplex=False)
        args = (
            self.metrics_url,
            self.metric,
            self.period_s,
            self._stop,
            self._count,
            self._last,
            send,
        )
        self._process = context.Process(target=_watch, args=args, daemon=True)
        self._process.start()

    @property
    def count(self) -> int:
        """Samples taken so far."""
        return int(self._count.value)

    @property
    def last(self) -> float:
        """The latest sample's value (while sampling)."""
        return float(self._last.value)

    def stop(self) -> None:
        self._stop.set()
        self.samples = self._receive.recv()
        self._process.join(timeout=10)

    def max_before(self, end_s: float) -> float:
        """The most seen in samples taken wholly before ``end_s``."""
        return max((r for _, got, r in self.samples if got <= end_s), default=0.0)

    def max_after(self, start_s: float) -> float:
        return max((r for sent, _, r in self.samples if sent >= start_s), default=0.0)

    def first_above(self, threshold: float, after_s: float) -> float | None:
        """When a sample requested after ``after_s`` first showed more than ``threshold`` (its
        arrival time: an upper bound)."""
        return next(
            (got for sent, got, r in self.samples if sent >= after_s and r > threshold), None
        )

    def longest_gap_s(self) -> float:
        """The longest time between two consecutive samples' arrivals (the sampler's stalls)."""
        arrivals = [got for _, got, _ in self.samples]
        return max((b - a for a, b in itertools.pairwise(arrivals)), default=0.0)


@dataclass
class BackgroundLoad:
    """Closed-loop clients streaming completions until stopped; ``concurrency`` may change while
    it runs (the offered load a controller follows). Errors are kept, not raised."""

    base_url: str
    concurrency: int = 4
    max_tokens: int = 48
    completed: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    async def _client(self, index: int, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            if index >= self.concurrency:
                await asyncio.sleep(0.05)
                continue
            try:
                result = await stream_completion(client, self.base_url, self.max_tokens)
                assert result.completion_tokens == self.max_tokens, result
                self.completed += 1
            except (httpx.HTTPError, AssertionError) as err:
                self.errors.append(repr(err))

    async def _main(self, most: int) -> None:
        async with httpx.AsyncClient(timeout=120, limits=KEEPALIVE) as client:
            await asyncio.gather(*(self._client(i, client) for i in range(most)))

    def start(self, most: int = 32) -> None:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(most),), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
