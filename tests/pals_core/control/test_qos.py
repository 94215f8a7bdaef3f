from __future__ import annotations

import pytest

from pals_core.control.qos import QoSPolicy, evaluate_window
from pals_core.engine import EngineMetrics, Histogram
from pals_core.engine.base import ITL_BUCKETS_S
from pals_core.errors import ConfigurationError


def snap(t: float, tokens: int, waiting: int, itl_counts: tuple[int, ...]) -> EngineMetrics:
    n = itl_counts[-1]
    itl = Histogram(ITL_BUCKETS_S, itl_counts, n, 0.02 * n)
    return EngineMetrics(t, tokens, 0, 10, waiting, 0, Histogram.empty((1.0,)), itl, 0.5)


def counts(upto_index: int, n: int) -> tuple[int, ...]:
    return tuple(0 if i < upto_index else n for i in range(len(ITL_BUCKETS_S)))


POLICY = QoSPolicy(itl_p99_slo_s=0.1)


def test_shortfall_with_a_queue_is_a_violation() -> None:
    w = evaluate_window(snap(0, 0, 0, counts(1, 0)), snap(5, 4000, 3, counts(1, 100)), 1000, POLICY)
    assert w.served_tok_s == 800 and w.throughput_short and w.violated


def test_shortfall_without_a_queue_is_no_demand() -> None:
    w = evaluate_window(snap(0, 0, 0, counts(1, 0)), snap(5, 4000, 0, counts(1, 100)), 1000, POLICY)
    assert not w.violated


def test_within_tolerance_is_fine_and_no_target_means_no_shortfall() -> None:
    before, after = snap(0, 0, 0, counts(1, 0)), snap(5, 4800, 5, counts(1, 100))
    assert not evaluate_window(before, after, 1000, POLICY).violated
    assert not evaluate_window(before, after, None, POLICY).violated


def test_itl_p99_above_slo_is_a_violation() -> None:
    # every token of the window fell in the (0.1, 0.15] bucket
    after = snap(5, 5000, 0, counts(5, 100))
    w = evaluate_window(snap(0, 0, 0, counts(5, 0)), after, 1000, POLICY)
    assert w.itl_p99_s > 0.1 and w.itl_violated and w.violated


def test_policy_validation_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match="itl_p99_slo_s"):
        QoSPolicy(itl_p99_slo_s=0)
    with pytest.raises(ConfigurationError, match="throughput_tolerance"):
        QoSPolicy(itl_p99_slo_s=0.1, throughput_tolerance=1.5)
