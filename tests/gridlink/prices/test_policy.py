"""The price policy: thresholds and the economic policy, with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridlink.errors import InvalidInputError
from gridlink.models.event import SignalKind
from gridlink.prices.policy import (
    NodeCurve,
    Threshold,
    economic_decision,
    economic_power_w,
    price_per_kwh,
    threshold_decision,
)

THRESHOLDS = [
    Threshold(0.2, SignalKind.LIMIT_KW, 800.0),
    Threshold(0.5, SignalKind.LIMIT_KW, 500.0),
    Threshold(1.0, SignalKind.REDUCTION_PCT, 80.0),
]
# 8 GPUs: 2 kW idle floor to 6 kW; throughput concave in power (diminishing returns)
NODE = NodeCurve(
    2000.0, 6000.0, ((2000.0, 0.0), (3000.0, 4000.0), (4000.0, 6500.0), (6000.0, 8000.0))
)
prices = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)


def test_threshold_examples() -> None:
    assert threshold_decision(0.1, THRESHOLDS) is None
    assert threshold_decision(0.2, THRESHOLDS) is None  # strictly above
    decision = threshold_decision(0.3, THRESHOLDS)
    assert decision is not None and (decision.kind, decision.value) == (SignalKind.LIMIT_KW, 800.0)
    assert "0.3" in decision.rule and "0.2" in decision.rule
    top = threshold_decision(7.0, THRESHOLDS)
    assert top is not None and (top.kind, top.value) == (SignalKind.REDUCTION_PCT, 80.0)


@given(prices, prices)
def test_a_higher_price_never_loosens_the_threshold_limit(a: float, b: float) -> None:
    low, high = sorted((a, b))
    limit_thresholds = [t for t in THRESHOLDS if t.kind is SignalKind.LIMIT_KW]
    d_low, d_high = (
        threshold_decision(low, limit_thresholds),
        threshold_decision(high, limit_thresholds),
    )
    if d_low is not None:
        assert d_high is not None and d_high.value <= d_low.value


def test_economic_power_examples() -> None:
    # slopes (tok/J): 4.0, 2.5, 0.75. Value 1e-6 per token: price per J = p / 3.6e6
    value = 1e-6
    assert economic_power_w(NODE, 0.0, value) == 6000.0
    assert economic_power_w(NODE, 2.0, value) == 6000.0  # needs 0.56 tok/J: every slope pays
    assert economic_power_w(NODE, 3.0, value) == 4000.0  # needs 0.83: the last slope does not
    assert economic_power_w(NODE, 10.0, value) == 3000.0  # needs 2.78
    assert economic_power_w(NODE, 20.0, value) == 2000.0  # needs 5.56: stay at the floor
    assert economic_power_w(NodeCurve(2000.0, 6000.0), 20.0, value) == 6000.0  # no curve
    assert economic_power_w(NODE, 5.0, 0.0) == 2000.0  # tokens worth nothing


@given(prices, prices, st.floats(min_value=0.01, max_value=100.0))
def test_economic_limit_is_monotone_and_within_the_fleet_range(
    a: float, b: float, value_per_mtok: float
) -> None:
    nodes = [NODE, NodeCurve(1000.0, 3000.0, ((1000.0, 0.0), (3000.0, 3000.0)))]
    low, high = sorted((a, b))

    def limit(price: float) -> float:
        decision = economic_decision(
            price, nodes, value_per_mtok=value_per_mtok, overhead_kw=5.0, facility_max_kw=100.0
        )
        return 100.0 if decision is None else decision.value

    assert limit(high) <= limit(low)
    floor_kw = 5.0 + (2000.0 + 1000.0) / 1000.0
    ceiling_kw = 5.0 + (6000.0 + 3000.0) / 1000.0
    assert floor_kw <= limit(high) <= max(ceiling_kw, 100.0)


@given(prices, st.floats(min_value=0.01, max_value=100.0))
def test_economic_power_is_a_curve_vertex_where_the_next_slope_does_not_pay(
    price: float, value_per_mtok: float
) -> None:
    value = value_per_mtok / 1e6
    power = economic_power_w(NODE, price, value)
    assert power in {p for p, _ in NODE.curve}
    needed = price / 3.6e6 / value
    slopes = {
        (p0, p1): (t1 - t0) / (p1 - p0)
        for (p0, t0), (p1, t1) in zip(NODE.curve, NODE.curve[1:], strict=False)
    }
    for (p0, p1), slope in slopes.items():
        if p1 <= power:
            assert slope >= needed  # every segment below pays for its energy
        elif p0 >= power and price > 0:
            assert slope < needed or p0 > power  # the next segment does not


def test_price_units() -> None:
    assert price_per_kwh(120.0, "MWH") == pytest.approx(0.12)
    assert price_per_kwh(0.3, None) == 0.3
    with pytest.raises(InvalidInputError, match="unit"):
        price_per_kwh(1.0, "THERMS")
