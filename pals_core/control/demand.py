"""Offered-load estimation from the engine's counters (pure, state passed in and out).

The load a node must serve is the output-token rate its arriving requests demand. Counters give
two views of it: the **generation rate** (what is served: thousands of tokens per period, a smooth
signal) and the **arrival rate x mean output length** (what is asked). The generation rate alone
is not enough: it lags the load by a request's lifetime (tens of seconds at a low clock), and a
batch limit that is too small caps it, so a controller that trusts it alone can starve itself.
The estimate is the generation-rate EWMA, replaced by the arrival-based one when that is
clearly (``arrival_evidence``) larger (arrivals averaged over a longer time constant: a few
requests per period with heavy-tailed lengths are noisy), plus a **backlog drain** term: the
waiting requests' tokens spread over ``drain_s`` seconds, so a queue that builds up buys capacity
at once. The generation rate rises faster than it falls (under-provisioning costs QoS at once,
over-provisioning only a little energy for a few seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pals_core.engine.base import EngineMetrics


@dataclass(frozen=True, slots=True)
class DemandConfig:
    gen_rise_tau_s: float = 12.0
    gen_fall_tau_s: float = 12.0
    arrival_tau_s: float = 10.0
    """Arrivals are Poisson-noisy (few requests per period): averaged evenly, over longer."""
    drain_s: float = 6.0
    arrival_evidence: float = 0.1
    """The arrival-based estimate replaces the generation rate only when it is this much larger
    (it is the noisier of the two: trusting it on every wiggle biases the estimate upwards)."""
    """Backlog drain horizon: waiting tokens / drain_s is added to the demand."""


@dataclass(frozen=True, slots=True)
class DemandState:
    last: EngineMetrics | None = None
    gen_rate_tok_s: float = math.nan
    arrival_rate_req_s: float = math.nan
    first: EngineMetrics | None = None
    finished_seen: int = 0
    """Requests finished since the first snapshot (the mean length needs enough of them)."""

    @property
    def mean_output_tok(self) -> float:
        """Mean output length since the first snapshot (see :func:`mean_output_tok`)."""
        if self.first is None or self.last is None:
            return math.nan
        running = self.last.num_requests_running
        return mean_output_tok(
            self.last.generation_tokens_total - self.first.generation_tokens_total,
            self.finished_seen,
            running,
            output_horizon_tok(
                self.gen_rate_tok_s, running, self.last.timestamp_s - self.first.timestamp_s
            ),
        )

    def estimate_tok_s(self, config: DemandConfig) -> float:
        """The offered load (NaN before two snapshots)."""
        if math.isnan(self.gen_rate_tok_s) or self.last is None:
            return math.nan
        demand = self.gen_rate_tok_s
        mean_out = self.mean_output_tok
        if not math.isnan(mean_out) and not math.isnan(self.arrival_rate_req_s):
            asked = self.arrival_rate_req_s * mean_out
            if asked > demand * (1.0 + config.arrival_evidence):
                demand = asked
            demand += self.last.num_requests_waiting * mean_out / config.drain_s
        return demand


MEAN_OUTPUT_MIN_FINISHED = 20
"""Finished requests before the censored estimate is trusted (fewer: its spread is too wide)."""


def output_horizon_tok(served_tok_s: float, running: int, observed_s: float) -> float:
    """The longest output the counters can have seen: the per-request generation rate (served
    rate over the running requests) times the time observed; +inf when it cannot be told."""
    if running > 0 and math.isfinite(served_tok_s):
        return served_tok_s / running * observed_s
    return math.inf


def mean_output_tok(
    generated_tok: float,
    finished: int,
    running: int,
    horizon_tok: float = math.inf,
    min_finished: int = MEAN_OUTPUT_MIN_FINISHED,
) -> float:
    """The mean output length from cumulative counters, corrected for the requests in flight.

    The requests seen to finish are a biased sample: in the first minute of a node the short
    ones finish and the long ones are still running, so tokens per finished-or-running request
    (the naive estimate) read 0.5-0.7x the true mean 20 s after a start (lognormal lengths,
    sigma 0.8, 30-60 tok/s per request). Treating the running requests as censored
    observations gives every token generated (finished and running requests alike) over the
    requests that finished: the maximum-likelihood mean for exponential lengths under any
    censoring; for chat-like lengths it reads 1.0-1.15x the mean 20 s after a start and
    converges to it. Where the lengths run far past what has been observed it extrapolates
    (1.6x for a 900-token mean seen for 20 s at 30 tok/s): so it is capped at ``horizon_tok``,
    the longest output the counters can have seen (per-request rate x time observed), but
    never below the naive estimate. With fewer than ``min_finished`` finishes the naive
    estimate is used. NaN before any token.

    Cumulative on purpose: a windowed ratio of generated tokens to completions collapses whenever
    the generation rate dips (e.g. right after a cap cut), which would make the controller
    under-estimate the load it just slowed down.
    """
    if not generated_tok > 0:
        return math.nan
    requests = finished + running
    naive = generated_tok / requests if requests > 0 else math.nan
    if finished < min_finished:
        return naive
    return min(generated_tok / finished, max(horizon_tok, naive))


def _ewma(
    old: float, new: float, dt_s: float, rise_tau_s: float, fall_tau_s: float, age_s: float
) -> float:
    """An EWMA whose time constant is at most half the time seen so far (``age_s``): a node
    starts empty, and a full time constant would carry its first, empty seconds for ~tau (the
    estimate at the end of a 10-s warm-up was half the load with tau = 12 s)."""
    if math.isnan(old):
        return new
    tau = min(rise_tau_s if new > old else fall_tau_s, max(dt_s, age_s / 2.0))
    alpha = 1.0 - math.exp(-dt_s / tau)
    return old + alpha * (new - old)


def update_demand(state: DemandState, metrics: EngineMetrics, config: DemandConfig) -> DemandState:
    """Fold one engine snapshot into the estimate."""
    last = state.last
    if last is None:
        return DemandState(last=metrics, first=metrics)
    dt_s = metrics.timestamp_s - last.timestamp_s
    if dt_s <= 0:
        return state
    gen = metrics.generation_tokens_total - last.generation_tokens_total
    first = state.first or last
    age_s = metrics.timestamp_s - first.timestamp_s
    arrived = metrics.requests_arrived_total - last.requests_arrived_total
    finished = metrics.request_success_total - last.request_success_total
    return DemandState(
        last=metrics,
        gen_rate_tok_s=_ewma(
            state.gen_rate_tok_s,
            gen / dt_s,
            dt_s,
            config.gen_rise_tau_s,
            config.gen_fall_tau_s,
            age_s,
        ),
        arrival_rate_req_s=_ewma(
            state.arrival_rate_req_s,
            arrived / dt_s,
            dt_s,
            config.arrival_tau_s,
            config.arrival_tau_s,
            age_s,
        ),
        first=state.first,
        finished_seen=state.finished_seen + max(0, finished),
    )
