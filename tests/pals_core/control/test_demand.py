from __future__ import annotations

import math

import numpy as np
import pytest

from pals_core.control.demand import (
    MEAN_OUTPUT_MIN_FINISHED,
    DemandConfig,
    DemandState,
    mean_output_tok,
    update_demand,
)
from pals_core.engine.base import ITL_BUCKETS_S, TTFT_BUCKETS_S, EngineMetrics, Histogram

CFG = DemandConfig()


def snap(
    t: float, gen: int, arrived: int, done: int, running: int = 20, waiting: int = 0
) -> EngineMetrics:
    return EngineMetrics(
        timestamp_s=t,
        generation_tokens_total=gen,
        prompt_tokens_total=0,
        num_requests_running=running,
        num_requests_waiting=waiting,
        request_success_total=done,
        time_to_first_token_seconds=Histogram.empty(TTFT_BUCKETS_S),
        inter_token_latency_seconds=Histogram.empty(ITL_BUCKETS_S),
        kv_cache_usage_perc=0.0,
        requests_arrived_total=arrived,
    )


def steady(rate_req_s: float, out_tok: int, seconds: float, waiting: int = 0) -> DemandState:
    """A node that keeps up: it serves rate x out tokens per second."""
    state = DemandState()
    for k in range(int(seconds / 0.5) + 1):
        t = 0.5 * k
        done = int(rate_req_s * t)
        state = update_demand(
            state, snap(t, done * out_tok + 20 * out_tok // 2, done + 20, done, 20, waiting), CFG
        )
    return state


def test_no_estimate_before_two_snapshots() -> None:
    state = update_demand(DemandState(), snap(0.0, 0, 0, 0), CFG)
    assert math.isnan(state.estimate_tok_s(CFG))


def test_steady_load_is_estimated_from_the_served_rate() -> None:
    state = steady(10.0, 400, 120.0)
    assert state.estimate_tok_s(CFG) == pytest.approx(4000.0, rel=0.03)
    assert state.mean_output_tok == pytest.approx(400.0, rel=0.1)


def test_waiting_requests_add_their_tokens_over_the_drain_horizon() -> None:
    base = steady(10.0, 400, 60.0).estimate_tok_s(CFG)
    queued = steady(10.0, 400, 60.0, waiting=30).estimate_tok_s(CFG)
    assert queued - base == pytest.approx(30 * 400 / CFG.drain_s, rel=0.15)


def test_arrivals_override_a_throttled_generation_rate() -> None:
    """A batch limit that is too small caps the generation rate; arrivals show the real load."""
    state = steady(10.0, 400, 60.0)
    last = state.last
    assert last is not None
    for k in range(1, 41):  # 20 s more: arrivals continue at 10/s, service halves
        t = last.timestamp_s + 0.5 * k
        state = update_demand(
            state,
            snap(
                t,
                last.generation_tokens_total + 1000 * k,
                last.requests_arrived_total + 5 * k,
                last.request_success_total + int(2.5 * k),
            ),
            CFG,
        )
    assert state.gen_rate_tok_s < 2600
    assert state.estimate_tok_s(CFG) > 3200


def _node_start(seconds: float, seed: int) -> tuple[float, int, int]:
    """A node that starts empty: 8 requests/s, lognormal outputs (mean 400, sigma 0.8), each
    generated at 40 tok/s. Returns (tokens generated, finished, running) after ``seconds``."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(8 * seconds)
    arrivals_s = rng.uniform(0.0, seconds, n)
    lengths = np.rint(rng.lognormal(math.log(400.0) - 0.32, 0.8, n)).clip(1, 8192)
    generated = np.minimum(lengths, (seconds - arrivals_s) * 40.0)
    finished = int((lengths <= (seconds - arrivals_s) * 40.0).sum())
    return float(generated.sum()), finished, n - finished


def test_the_mean_output_length_counts_the_requests_in_flight_as_censored() -> None:
    """20 s after a start the short requests have finished and the long ones are still running:
    tokens per finished-or-running request read about 0.6x the mean; the censored estimate reads
    a little above it (the safe side), and both converge."""
    early = [mean_output_tok(*_node_start(20.0, seed)) for seed in range(40)]
    naive = [g / (f + r) for g, f, r in (_node_start(20.0, seed) for seed in range(40))]
    assert 380 < float(np.median(early)) < 480
    assert float(np.median(naive)) < 280
    late = [mean_output_tok(*_node_start(120.0, seed)) for seed in range(20)]
    assert 380 < float(np.median(late)) < 420


def test_few_finished_requests_fall_back_to_counting_the_running_ones() -> None:
    assert mean_output_tok(4000.0, 5, 15) == pytest.approx(200.0)
    assert mean_output_tok(4000.0, MEAN_OUTPUT_MIN_FINISHED, 15) == pytest.approx(
        4000.0 / MEAN_OUTPUT_MIN_FINISHED
    )
    assert math.isnan(mean_output_tok(0.0, 30, 4))
    assert math.isnan(mean_output_tok(100.0, 0, 0))


def test_the_censored_mean_never_reaches_past_the_longest_output_seen() -> None:
    """Long outputs (mean 900) seen for 20 s at 30 tok/s per request: no request can be older
    than 600 tokens, so the estimate is capped there (uncapped it extrapolates to ~1.6x the
    mean), and never below the naive count."""
    assert mean_output_tok(30_000.0, 25, 100, horizon_tok=600.0) == pytest.approx(600.0)
    assert mean_output_tok(30_000.0, 25, 100, horizon_tok=100.0) == pytest.approx(30_000 / 125)
    assert mean_output_tok(30_000.0, 25, 100) == pytest.approx(1200.0)
