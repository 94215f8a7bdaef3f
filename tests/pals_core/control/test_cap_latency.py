"""The latency-feedback cap baseline: down while the ITL holds, up at once on an excess, never
above cap-only's caps under a budget."""

from __future__ import annotations

from dataclasses import replace

from pals_core.control.cap_latency import CapLatencyPolicy
from pals_core.control.policy import Observation
from pals_core.control.qos import QoSPolicy
from pals_core.engine.base import ITL_BUCKETS_S, Histogram
from tests.pals_core.control.test_pals import _hist_with, obs

QOS = QoSPolicy(itl_p99_slo_s=0.1)


def _at(t: float, hist: Histogram, budget: float | None = None) -> Observation:
    o = obs(t, budget=budget, power=(300.0,), energy=(300.0 * t,))
    return replace(o, metrics=replace(o.metrics, inter_token_latency_seconds=hist))


def _cap(policy: CapLatencyPolicy, o: Observation) -> float:
    caps = policy.decide(o).power_limits_w
    assert caps is not None
    return caps[0]


def test_the_cap_walks_down_while_the_itl_holds_and_jumps_up_on_an_excess() -> None:
    policy = CapLatencyPolicy(QOS, batch_limit=1024)
    h = Histogram.empty(ITL_BUCKETS_S)
    assert _cap(policy, _at(0.0, h)) == 700.0  # starts where stock runs
    caps = []
    for k in range(1, 6):  # comfortable 5-s windows (p99 far under 0.7 x SLO)
        h = _hist_with(h, 0.01, 600)
        caps.append(_cap(policy, _at(5.0 * k, h)))
    assert caps == sorted(caps, reverse=True) and caps[-1] <= 700.0 - 5 * 25.0
    h = _hist_with(h, 0.2, 600)  # a window at twice the SLO
    assert _cap(policy, _at(25.5, h)) == caps[-1] + 60.0  # at once, by the step bound
    assert policy.decide(_at(26.0, h)).batch_limit == 1024  # the batch stays at stock's


def test_under_a_budget_the_caps_never_exceed_cap_onlys() -> None:
    policy = CapLatencyPolicy(QOS)
    h = Histogram.empty(ITL_BUCKETS_S)
    for k in range(4):
        assert _cap(policy, _at(0.5 * k, h, budget=400.0)) <= 400.0
