"""Offered-load estimation from the engine's counters (pure, state passed in and out).

The load a node must serve is the output-token rate its arriving requests demand. Counters give
two views of it: the **generation rate** (what is served: thousands of tokens per period, so a
smooth signal, equal to the load whenever the node keeps up) and the **arrival rate x mean output
length** (what is asked, even when the node falls behind; but a few requests per period with
heavy-tailed lengths, so a noisy signal). The estimate is the generation-rate EWMA; only while
requests wait (the node is behind, so the generation rate under-reads the load) does it take the
larger of the two, plus a **backlog drain** term: the waiting requests' tokens spread over
``drain_s`` seconds, so a queue that builds up buys capacity at once instead of waiting for the
averages to catch up. The generation rate rises faster than it falls (under-provisioning costs QoS
at once, over-provisioning only a little energy for a few seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pals_core.engine.base import EngineMetrics


@dataclass(frozen=True, slots=True)
class DemandConfig:
    gen_rise_tau_s: float = 3.0
    gen_fall_tau_s: float = 6.0
    arrival_tau_s: float = 10.0
    """Arrivals are Poisson-noisy (few requests per period): averaged evenly, over longer."""
    length_tau_s: float = 30.0
    """Time constant of the mean-output-length average (finished requests)."""
    drain_s: float = 6.0
    """Backlog drain horizon: waiting tokens / drain_s is added to the demand."""


@dataclass(frozen=True, slots=True)
class DemandState:
    last: EngineMetrics | None = None
    gen_rate_tok_s: float = math.nan
    arrival_rate_req_s: float = math.nan
    gen_tokens_ewma: float = 0.0
    """EWMA of generated tokens per period and of finished requests per period: their ratio is the
    mean output length (robust to periods with no completion)."""
    finished_ewma: float = 0.0

    @property
    def mean_output_tok(self) -> float:
        return self.gen_tokens_ewma / self.finished_ewma if self.finished_ewma > 0.5 else math.nan

    def estimate_tok_s(self, config: DemandConfig) -> float:
        """The offered load (NaN before two snapshots)."""
        if math.isnan(self.gen_rate_tok_s) or self.last is None:
            return math.nan
        demand = self.gen_rate_tok_s
        waiting = self.last.num_requests_waiting
        mean_out = self.mean_output_tok
        if waiting > 0 and not math.isnan(mean_out):
            if not math.isnan(self.arrival_rate_req_s):
                demand = max(demand, self.arrival_rate_req_s * mean_out)
            demand += waiting * mean_out / config.drain_s
        return demand


def _ewma(old: float, new: float, dt_s: float, rise_tau_s: float, fall_tau_s: float) -> float:
    if math.isnan(old):
        return new
    tau = rise_tau_s if new > old else fall_tau_s
    alpha = 1.0 - math.exp(-dt_s / tau)
    return old + alpha * (new - old)


def update_demand(state: DemandState, metrics: EngineMetrics, config: DemandConfig) -> DemandState:
    """Fold one engine snapshot into the estimate."""
    last = state.last
    if last is None:
        return DemandState(last=metrics)
    dt_s = metrics.timestamp_s - last.timestamp_s
    if dt_s <= 0:
        return state
    gen = metrics.generation_tokens_total - last.generation_tokens_total
    arrived = metrics.requests_arrived_total - last.requests_arrived_total
    finished = metrics.request_success_total - last.request_success_total
    a_len = 1.0 - math.exp(-dt_s / config.length_tau_s)
    first = state.finished_ewma == 0.0 and state.gen_tokens_ewma == 0.0
    return DemandState(
        last=metrics,
        gen_rate_tok_s=_ewma(
            state.gen_rate_tok_s, gen / dt_s, dt_s, config.gen_rise_tau_s, config.gen_fall_tau_s
        ),
        arrival_rate_req_s=_ewma(
            state.arrival_rate_req_s,
            arrived / dt_s,
            dt_s,
            config.arrival_tau_s,
            config.arrival_tau_s,
        ),
        gen_tokens_ewma=gen
        if first
        else state.gen_tokens_ewma + a_len * (gen - state.gen_tokens_ewma),
        finished_ewma=finished
        if first
        else state.finished_ewma + a_len * (finished - state.finished_ewma),
    )
