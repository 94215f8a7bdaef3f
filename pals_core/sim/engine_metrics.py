"""Counters and histograms of the simulated engine beyond vLLM's per-step ones.

vLLM (V1) exports per-request latency histograms with one set of buckets: end to end (arrival to
last token), queue (arrival to first scheduled), prefill (first scheduled to first token) and
decode (first token to last token). A preempted request keeps its first scheduling time, as in
vLLM, so its recomputation counts as decode time.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from dataclasses import dataclass

from pals_core.engine.base import Histogram
from pals_core.sim.request import SimRequest

# vLLM's request_latency_buckets
REQUEST_LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)  # fmt: skip  (a table: keep vLLM's rows)
E2E = "vllm:e2e_request_latency_seconds"
QUEUE = "vllm:request_queue_time_seconds"
PREFILL = "vllm:request_prefill_time_seconds"
DECODE = "vllm:request_decode_time_seconds"
REQUEST_HISTOGRAM_DOCS = {
    E2E: "Histogram of e2e request latency in seconds.",
    QUEUE: "Histogram of time spent in WAITING phase for request.",
    PREFILL: "Histogram of time spent in PREFILL phase for request.",
    DECODE: "Histogram of time spent in DECODE phase for request.",
}


class Hist:
    """Non-cumulative bucket counts; cheap to add many equal observations at once."""

    __slots__ = ("_cached", "bounds", "count", "counts", "sum_s")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum_s = 0.0
        self._cached: Histogram | None = None

    def add(self, value_s: float, n: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value_s)] += n
        self.count += n
        self.sum_s += value_s * n

    def snapshot(self) -> Histogram:
        cached = self._cached
        if cached is not None and cached.count == self.count:
            return cached
        self._cached = Histogram(
            self.bounds,
            tuple(itertools.accumulate(self.counts[:-1])),
            self.count,
            self.sum_s,
        )
        return self._cached


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Cumulative figures beyond vLLM's metrics (for calibration and reports)."""

    time_s: float
    busy_s: float
    steps: int
    running_seq_s: float
    """Integral of the running-sequence count over time (divide by time for the mean batch)."""
    preemptions: int


class RequestTimes:
    """The four per-request histograms; O(1) per request event."""

    def __init__(self) -> None:
        self._hists = {name: Hist(REQUEST_LATENCY_BUCKETS_S) for name in REQUEST_HISTOGRAM_DOCS}

    def queued(self, r: SimRequest) -> None:
        if r.scheduled_s is not None:
            self._hists[QUEUE].add(r.scheduled_s - r.arrival_s)

    def first_token(self, r: SimRequest) -> None:
        if r.scheduled_s is not None and r.first_token_s is not None:
            self._hists[PREFILL].add(r.first_token_s - r.scheduled_s)

    def finished(self, r: SimRequest) -> None:
        if r.finish_s is None:
            return
        self._hists[E2E].add(r.finish_s - r.arrival_s)
        if r.first_token_s is not None:
            self._hists[DECODE].add(r.finish_s - r.first_token_s)

    def snapshot(self) -> dict[str, Histogram]:
        return {name: h.snapshot() for name, h in self._hists.items()}
