"""The serving-engine interface, in the vocabulary of vLLM's Prometheus metrics.

Each field of :class:`EngineMetrics` carries the same meaning as the vLLM metric named beside it,
so a real vLLM backend is a thin adapter that scrapes ``/metrics``, and the simulator exports the
same names on its own ``/metrics``. Counters are cumulative since the engine started; the consumer
differences two snapshots to get rates.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass

# vLLM's bucket bounds (seconds) for these histograms (vllm/v1/metrics/loggers.py).
DEFAULT_MAX_NUM_SEQS = 256
"""vLLM's default batch limit (``max_num_seqs``) on GPUs under 70 GiB and on A100s: the initial
limit of simulated engines and of the node agent (larger GPUs: ``control.baselines``)."""
MAX_BATCH_LIMIT = 4096
"""The largest batch limit the controllers write and the simulated engine accepts."""

TTFT_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
ITL_BUCKETS_S: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)


@dataclass(frozen=True, slots=True)
class Histogram:
    """A Prometheus histogram: ``bucket_counts[i]`` observations were <= ``upper_bounds_s[i]``
    (cumulative, as Prometheus exposes ``_bucket{le=...}``); ``+Inf`` is ``count``."""

    upper_bounds_s: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    count: int
    sum_s: float

    @classmethod
    def empty(cls, upper_bounds_s: Sequence[float]) -> Histogram:
        bounds = tuple(upper_bounds_s)
        return cls(bounds, tuple(0 for _ in bounds), 0, 0.0)

    def minus(self, earlier: Histogram) -> Histogram:
        """The observations made between ``earlier`` and this snapshot."""
        if earlier.upper_bounds_s != self.upper_bounds_s:
            raise ValueError("histograms have different buckets")
        return Histogram(
            self.upper_bounds_s,
            tuple(a - b for a, b in zip(self.bucket_counts, earlier.bucket_counts, strict=True)),
            self.count - earlier.count,
            self.sum_s - earlier.sum_s,
        )

    def quantile(self, q: float) -> float:
        """Estimate the ``q`` quantile by linear interpolation inside buckets (as PromQL's
        ``histogram_quantile``). NaN when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be within [0, 1], got {q}")
        if self.count == 0:
            return math.nan
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0
        for bound, cumulative in zip(self.upper_bounds_s, self.bucket_counts, strict=True):
            if cumulative >= rank:
                in_bucket = cumulative - lower_count
                if in_bucket <= 0:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
            lower_bound, lower_count = bound, cumulative
        return self.upper_bounds_s[-1]

    @property
    def mean_s(self) -> float:
        return self.sum_s / self.count if self.count else math.nan


@dataclass(frozen=True, slots=True)
class EngineMetrics:
    """One snapshot of an engine's state."""

    timestamp_s: float
    """When the snapshot was taken, on the engine's clock (seconds)."""
    generation_tokens_total: int
    """``vllm:generation_tokens_total``: output tokens generated."""
    prompt_tokens_total: int
    """``vllm:prompt_tokens_total``: prompt tokens prefilled."""
    num_requests_running: int
    """``vllm:num_requests_running``: sequences in the running batch."""
    num_requests_waiting: int
    """``vllm:num_requests_waiting``: requests queued, not yet admitted."""
    request_success_total: int
    """``vllm:request_success_total``: requests finished."""
    time_to_first_token_seconds: Histogram
    """``vllm:time_to_first_token_seconds``."""
    inter_token_latency_seconds: Histogram
    """``vllm:inter_token_latency_seconds``."""
    kv_cache_usage_perc: float
    """``vllm:kv_cache_usage_perc``: fraction of KV-cache blocks in use, 0..1."""
    requests_arrived_total: int = 0
    """Requests received (finished + running + waiting + aborted); lets a controller measure the
    offered load. vLLM has no single counter for this; its adapter derives it."""
    prompt_tokens_arrived_total: int = 0
    """Prompt tokens of all requests received, admitted or not (offered prefill load)."""


class ServingEngine(abc.ABC):
    """A running serving engine whose batch limit can change at run time."""

    @abc.abstractmethod
    def get_batch_limit(self) -> int:
        """The maximum number of concurrently running sequences (vLLM's ``max_num_seqs``)."""

    @abc.abstractmethod
    def set_batch_limit(self, max_num_seqs: int) -> None:
        """Change the batch limit; running sequences above a lowered limit finish normally, and
        no new sequence is admitted until the running count falls below it."""

    @abc.abstractmethod
    def metrics(self) -> EngineMetrics:
        """A snapshot of the engine's counters and gauges."""

    def batch_limit_unavailable_reason(self) -> str | None:
        """None when :meth:`set_batch_limit` works; otherwise why not and how to enable it
        (e.g. a vLLM started without the PALS plugin). Controllers then keep the batch limit
        as it is and act with the power cap only."""
        return None
