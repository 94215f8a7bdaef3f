from __future__ import annotations

import math

import numpy as np
import pytest

from pals_core.control.qos import QoSPolicy
from pals_core.engine.base import ITL_BUCKETS_S, TTFT_BUCKETS_S, EngineMetrics, Histogram
from pals_core.errors import ConfigurationError
from pals_core.experiments.metrics import (
    BudgetMetricsConfig,
    RunSeries,
    budget_compliance,
    budget_steps,
    efficiency,
    percentile,
    qos_windows,
    summarize_qos,
)

CFG = BudgetMetricsConfig(settle_window_s=1.0, tolerance_frac=0.01, step_threshold_frac=0.005)


def series_from_power(
    power_w: list[float], budget_w: list[float | None], dt_s: float = 0.1
) -> RunSeries:
    """Samples every dt; interval i draws power_w[i] under budget_w[i]."""
    n = len(power_w) + 1
    time_s = [i * dt_s for i in range(n)]
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(power_w) * dt_s)])
    return RunSeries.from_lists(
        time_s, [0.0, *power_w], list(energy), [*budget_w, budget_w[-1]], [0.0] * n
    )


def test_time_and_energy_over_budget_on_a_synthetic_trace() -> None:
    # 100 intervals of 0.1 s under a constant 1000 W budget (the first second is the settling
    # window of the initial budget); 10 intervals after it draw 1100 W, the rest 900 W.
    power = [900.0] * 100
    for i in range(40, 50):
        power[i] = 1100.0
    metrics = budget_compliance(series_from_power(power, [1000.0] * 100), CFG)
    assert metrics is not None
    assert metrics.budgeted_s == pytest.approx(9.0)
    assert metrics.time_over_frac == pytest.approx(1.0 / 9.0)
    drawn_j = (80 * 900.0 + 10 * 1100.0) * 0.1
    assert metrics.energy_over_frac == pytest.approx(10 * 100.0 * 0.1 / drawn_j)


def test_settling_window_after_a_fall_is_excluded_and_settling_is_measured() -> None:
    # Budget 1000 W for 2 s, then 600 W; power needs 0.5 s (5 intervals) to come down.
    budget: list[float | None] = [1000.0] * 20 + [600.0] * 30
    power = [950.0] * 20 + [900.0] * 5 + [590.0] * 25
    series = series_from_power(power, budget)
    metrics = budget_compliance(series, CFG)
    assert metrics is not None
    assert metrics.time_over_frac == 0.0  # the overshoot sits inside the 1 s window
    falls = budget_steps(series, CFG)
    assert [s.time_s for s in falls] == pytest.approx([0.0, 2.0])
    assert falls[1].binding and falls[1].settling_s == pytest.approx(0.5)
    assert not falls[0].binding and falls[0].settling_s == 0.0


def test_overshoot_past_the_window_counts_and_never_settling_spans_the_segment() -> None:
    budget: list[float | None] = [1000.0] * 10 + [600.0] * 30
    power = [900.0] * 10 + [700.0] * 30
    series = series_from_power(power, budget)
    metrics = budget_compliance(series, CFG)
    assert metrics is not None
    # Counted: 0 (first second excluded) + 20 of the 30 low-budget intervals, all over.
    assert metrics.time_over_frac == pytest.approx(1.0)
    assert budget_steps(series, CFG)[-1].settling_s == pytest.approx(3.0)


def test_ramps_are_not_steps_and_unconstrained_runs_have_no_budget_metrics() -> None:
    budget: list[float | None] = [1000.0 - i for i in range(50)]  # 0.1 % per tick
    series = series_from_power([500.0] * 50, budget)
    assert len(budget_steps(series, CFG)) == 1  # only the initial appearance of a budget
    assert budget_compliance(series_from_power([500.0] * 10, [None] * 10), CFG) is None


def test_lifting_the_budget_ends_a_segment() -> None:
    budget: list[float | None] = [500.0] * 20 + [None] * 20
    series = series_from_power([450.0] * 20 + [900.0] * 20, budget)
    steps = budget_steps(series, CFG)
    assert len(steps) == 1 and not steps[0].binding
    metrics = budget_compliance(series, CFG)
    assert metrics is not None and metrics.time_over_frac == 0.0


def test_efficiency_excludes_the_warm_up() -> None:
    time_s = [0.0, 1.0, 2.0, 3.0]
    series = RunSeries.from_lists(
        time_s, [0, 0, 0, 0], [0.0, 1000.0, 1500.0, 2000.0], [None] * 4, [0, 100, 600, 1100]
    )
    eff = efficiency(series, warmup_s=1.0)
    assert eff.tokens_per_j == pytest.approx(1000 / 1000)
    assert eff.throughput_tok_s == pytest.approx(500.0)
    assert eff.mean_power_w == pytest.approx(500.0)
    with pytest.raises(ConfigurationError, match="warm-up"):
        efficiency(series, warmup_s=5.0)


def _snapshot(t: float, tokens: int, waiting: int, slow_tokens: int) -> EngineMetrics:
    # Cumulative buckets: the fast tokens took 0.05 s each, the slow ones 0.5 s.
    itl_counts = [
        (tokens - slow_tokens if b >= 0.05 else 0) + (slow_tokens if b >= 0.5 else 0)
        for b in ITL_BUCKETS_S
    ]
    return EngineMetrics(
        timestamp_s=t,
        generation_tokens_total=tokens,
        prompt_tokens_total=0,
        num_requests_running=0,
        num_requests_waiting=waiting,
        request_success_total=0,
        time_to_first_token_seconds=Histogram.empty(TTFT_BUCKETS_S),
        inter_token_latency_seconds=Histogram(ITL_BUCKETS_S, tuple(itl_counts), tokens, 0.0),
        kv_cache_usage_perc=0.0,
    )


def test_qos_windows_count_shortfall_with_queue_and_latency() -> None:
    policy = QoSPolicy(itl_p99_slo_s=0.1)
    snaps = [
        _snapshot(0.0, 0, 0, 0),
        _snapshot(5.0, 500, 3, 0),  # 100 tok/s, target 100: fine
        _snapshot(10.0, 800, 3, 0),  # 60 tok/s with a queue: short
        _snapshot(15.0, 1100, 0, 0),  # 60 tok/s, empty queue: no demand, fine
        _snapshot(20.0, 1600, 0, 100),  # 20 % of its tokens at 0.5 s: ITL p99 over SLO
    ]
    windows = qos_windows(snaps, 100.0, policy)
    assert [w.violated for w in windows] == [False, True, False, True]
    summary = summarize_qos(windows)
    assert (summary.windows, summary.violated) == (4, 2)
    assert (summary.throughput_short, summary.itl_violated) == (1, 1)
    assert summary.violated_frac == 0.5


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 95))
    assert percentile([0.0, 1.0, 2.0], 50) == 1.0
