from __future__ import annotations

import math

import pytest

from pals_core.control.demand import DemandConfig, DemandState, update_demand
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
