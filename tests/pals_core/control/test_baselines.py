from __future__ import annotations

import pytest

from pals_core.control.baselines import (
    BatchOnlyPolicy,
    CapOnlyPolicy,
    FixedPolicy,
    StockPolicy,
)
from pals_core.control.policy import GPUReading, Observation
from pals_core.engine.base import ITL_BUCKETS_S, TTFT_BUCKETS_S, EngineMetrics, Histogram
from pals_core.errors import ConfigurationError


def obs(
    power_w: float,
    budget_w: float | None,
    *,
    limits_w: tuple[float, ...] = (700.0, 700.0),
    running: int = 100,
    waiting: int = 0,
    batch_limit: int = 256,
) -> Observation:
    n = len(limits_w)
    metrics = EngineMetrics(
        timestamp_s=0.0,
        generation_tokens_total=0,
        prompt_tokens_total=0,
        num_requests_running=running,
        num_requests_waiting=waiting,
        request_success_total=0,
        time_to_first_token_seconds=Histogram.empty(TTFT_BUCKETS_S),
        inter_token_latency_seconds=Histogram.empty(ITL_BUCKETS_S),
        kv_cache_usage_perc=0.0,
    )
    gpus = tuple(GPUReading(power_w / n, 0.0, lim, 200.0, 700.0) for lim in limits_w)
    return Observation(0.0, budget_w, None, gpus, metrics, batch_limit)


def test_stock_runs_at_maximum_and_ignores_the_budget() -> None:
    action = StockPolicy().decide(obs(1300.0, 500.0, limits_w=(300.0, 300.0)))
    assert action.power_limits_w == (700.0, 700.0) and action.batch_limit == 256
    assert StockPolicy().guard(obs(1300.0, 500.0)) is None


def test_fixed_policy_holds_its_configuration() -> None:
    action = FixedPolicy(450.0, 64).decide(obs(800.0, None))
    assert action.power_limits_w == (450.0, 450.0) and action.batch_limit == 64
    with pytest.raises(ConfigurationError, match="batch_limit"):
        FixedPolicy(450.0, 0)


def test_cap_only_caps_sum_to_the_setpoint_and_keeps_batch_256() -> None:
    policy = CapOnlyPolicy()
    assert policy.decide(obs(900.0, None)).power_limits_w == (700.0, 700.0)
    action = policy.decide(obs(600.0, 1000.0))  # light load: caps do not bind
    assert action.batch_limit == 256
    assert action.power_limits_w is not None
    assert sum(action.power_limits_w) == pytest.approx(970.0)
    # Many periods of light load never wind the caps above the setpoint (anti-windup).
    for _ in range(50):
        action = policy.decide(obs(600.0, 1000.0, limits_w=(485.0, 485.0)))
    assert action.power_limits_w is not None and sum(action.power_limits_w) <= 970.0 + 1e-9


def test_cap_only_guard_cuts_at_once_when_over_or_when_the_budget_falls() -> None:
    policy = CapOnlyPolicy()
    assert policy.guard(obs(900.0, 1000.0, limits_w=(480.0, 480.0))) is None
    cut = policy.guard(obs(1200.0, 1000.0, limits_w=(600.0, 600.0)))  # over budget
    assert cut is not None and cut.power_limits_w is not None
    assert sum(cut.power_limits_w) <= 970.0
    fell = policy.guard(obs(900.0, 800.0, limits_w=(700.0, 700.0)))  # caps allow > budget
    assert fell is not None and fell.power_limits_w is not None
    assert sum(fell.power_limits_w) == pytest.approx(0.97 * 800.0)


def test_cap_only_closed_loop_tracks_a_budget_when_caps_under_deliver() -> None:
    """Toy plant: a heavy load draws 4 % more than its caps (cap regulation error)."""
    policy = CapOnlyPolicy()
    limits = (700.0, 700.0)
    budget_w = 1000.0
    power_w = 1400.0
    for _ in range(40):
        action = policy.decide(obs(power_w, budget_w, limits_w=limits))
        assert action.power_limits_w is not None
        limits = action.power_limits_w
        power_w = 1.04 * sum(limits)
    assert budget_w * 0.94 <= power_w <= budget_w


def test_batch_only_cuts_the_batch_in_proportion_and_raises_it_slowly() -> None:
    policy = BatchOnlyPolicy()
    assert policy.decide(obs(900.0, None)).batch_limit == 256
    cut = policy.decide(obs(1200.0, 1000.0, running=200))
    assert cut.power_limits_w == (700.0, 700.0)
    assert cut.batch_limit is not None
    assert cut.batch_limit == int(200 * (950.0 / 1200.0) ** 2)
    raised = policy.decide(obs(700.0, 1000.0, running=cut.batch_limit, waiting=10))
    assert raised.batch_limit == int(cut.batch_limit * 1.25)
    idle = policy.decide(obs(700.0, 1000.0, running=20, waiting=0))  # no demand: hold
    assert idle.batch_limit == raised.batch_limit


def test_batch_only_guard_acts_only_over_budget() -> None:
    policy = BatchOnlyPolicy()
    assert policy.guard(obs(990.0, 1000.0)) is None
    cut = policy.guard(obs(1100.0, 1000.0, running=100))
    assert cut is not None and cut.batch_limit == int(100 * (950.0 / 1100.0) ** 2)
    assert cut.power_limits_w is None


def test_batch_only_climbs_back_from_a_limit_of_one() -> None:
    policy = BatchOnlyPolicy()
    policy.decide(obs(2000.0, 1000.0, running=1))
    limits = [
        policy.decide(obs(600.0, 1000.0, running=1, waiting=50)).batch_limit for _ in range(4)
    ]
    assert limits == [2, 3, 4, 5]
