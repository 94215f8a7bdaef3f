"""The one definition of a QoS violation, used by the controller, the experiments and the docs.

Time is cut into windows of ``window_s`` seconds (default 5 s: ten control periods). A window is
**violated** when either

1. **throughput shortfall**: the output tokens served in the window fall short of the throughput
   target by more than ``throughput_tolerance`` (default 5 %) *while requests are waiting* at the
   end of the window (a shortfall with an empty queue is an absence of demand, not a failure to
   serve it); or
2. **latency**: the window's inter-token latency p99 exceeds ``itl_p99_slo_s``, or (when
   ``ttft_p99_slo_s`` is set) the p99 time to first token of the requests whose first token
   came in the window exceeds it (queueing shows there first).

The target is the operator's fixed target when one is set, otherwise the offered load: the
output-token rate that the arriving requests demand. The experiments pass the scenario's offered
load (the same for every controller); a live node passes its own demand estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pals_core.engine.base import EngineMetrics
from pals_core.errors import ConfigurationError

QOS_VIOLATION_BUDGET = 0.01
"""The fraction of QoS windows a run may violate and still count as meeting QoS (the matched-QoS
comparisons of the experiments; PALS's ``qos_violation_budget`` by default)."""


@dataclass(frozen=True, slots=True)
class QoSPolicy:
    itl_p99_slo_s: float
    window_s: float = 5.0
    throughput_tolerance: float = 0.05
    ttft_p99_slo_s: float | None = None

    def __post_init__(self) -> None:
        if not self.itl_p99_slo_s > 0:
            raise ConfigurationError(f"itl_p99_slo_s must be > 0, got {self.itl_p99_slo_s}")
        if not self.window_s > 0:
            raise ConfigurationError(f"window_s must be > 0, got {self.window_s}")
        if self.ttft_p99_slo_s is not None and not self.ttft_p99_slo_s > 0:
            raise ConfigurationError(
                f"ttft_p99_slo_s must be > 0 or None, got {self.ttft_p99_slo_s}"
            )
        if not 0 <= self.throughput_tolerance < 1:
            raise ConfigurationError(
                f"throughput_tolerance must be within [0, 1), got {self.throughput_tolerance}"
            )


@dataclass(frozen=True, slots=True)
class WindowQoS:
    """The verdict on one window, with the figures behind it."""

    duration_s: float
    served_tok_s: float
    target_tok_s: float | None
    waiting_at_end: int
    itl_p99_s: float
    throughput_short: bool
    itl_violated: bool
    ttft_p99_s: float = math.nan
    ttft_violated: bool = False

    @property
    def violated(self) -> bool:
        return self.throughput_short or self.itl_violated or self.ttft_violated


def evaluate_window(
    before: EngineMetrics,
    after: EngineMetrics,
    target_tok_s: float | None,
    policy: QoSPolicy,
) -> WindowQoS:
    """Judge the window between two engine snapshots against ``policy``."""
    duration_s = after.timestamp_s - before.timestamp_s
    if duration_s <= 0:
        raise ConfigurationError("the second snapshot must be later than the first")
    served_tok_s = (after.generation_tokens_total - before.generation_tokens_total) / duration_s
    itl = after.inter_token_latency_seconds.minus(before.inter_token_latency_seconds)
    itl_p99_s = itl.quantile(0.99)
    short = (
        target_tok_s is not None
        and after.num_requests_waiting > 0
        and served_tok_s < (1.0 - policy.throughput_tolerance) * target_tok_s
    )
    itl_violated = not math.isnan(itl_p99_s) and itl_p99_s > policy.itl_p99_slo_s
    ttft = after.time_to_first_token_seconds.minus(before.time_to_first_token_seconds)
    ttft_p99_s = ttft.quantile(0.99)
    ttft_slo_s = policy.ttft_p99_slo_s
    ttft_violated = (
        ttft_slo_s is not None and not math.isnan(ttft_p99_s) and ttft_p99_s > ttft_slo_s
    )
    return WindowQoS(
        duration_s=duration_s,
        served_tok_s=served_tok_s,
        target_tok_s=target_tok_s,
        waiting_at_end=after.num_requests_waiting,
        itl_p99_s=itl_p99_s,
        throughput_short=short,
        itl_violated=itl_violated,
        ttft_p99_s=ttft_p99_s,
        ttft_violated=ttft_violated,
    )
