"""The fleet allocator: each rule on a hand-computed example, then properties."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridlink.core.allocator import Allocation, AllocationResult, NodeSpec, allocate
from gridlink.core.curves import evaluate, upper_concave_hull
from gridlink.errors import AllocationError, GridlinkError

# Slopes (tok/J) 1.0 then 0.5, and 0.8 then 0.2.
STEEP = ((100.0, 0.0), (200.0, 100.0), (300.0, 150.0))
FLAT = ((100.0, 0.0), (200.0, 80.0), (300.0, 100.0))


def node(
    node_id: int,
    tier: int = 1,
    curve: tuple[tuple[float, float], ...] = STEEP,
    demand_w: float | None = None,
    min_w: float = 100.0,
    max_w: float = 300.0,
) -> NodeSpec:
    return NodeSpec(node_id, min_w, max_w, tier, curve, demand_w)


# --- examples -------------------------------------------------------------------------------


def test_budget_below_the_minimums_gives_the_minimums_and_a_shortfall() -> None:
    result = allocate(250.0, [node(1), node(2), node(3)])
    assert result.allocations == {1: 100.0, 2: 100.0, 3: 100.0}
    assert not result.feasible
    assert result.shortfall_kw == pytest.approx(0.05)
    assert result.total_w == 300.0 and result.unallocated_w == 0.0
    assert set(result.limited_by.values()) == {"infeasible"}


def test_budget_equal_to_the_minimums_is_feasible() -> None:
    result = allocate(300.0, [node(1), node(2), node(3)])
    assert result.feasible and result.shortfall_kw == 0.0
    assert result.allocations == {1: 100.0, 2: 100.0, 3: 100.0}


def test_water_filling_follows_marginal_tokens_per_joule() -> None:
    # 150 W above the minimums: STEEP's 1.0 segment (100 W), then FLAT's 0.8 segment (50 W).
    result = allocate(350.0, [node(1, curve=STEEP), node(2, curve=FLAT)])
    assert result.allocations == {1: 200.0, 2: 150.0}
    assert result.water_level_tok_per_j == 0.8
    # 300 W above: 1.0 (100), 0.8 (100), then STEEP's 0.5 segment (100) before FLAT's 0.2.
    assert allocate(500.0, [node(1, curve=STEEP), node(2, curve=FLAT)]).allocations == {
        1: 300.0,
        2: 200.0,
    }


def test_protected_tier_reaches_its_cap_before_the_next_tier_gets_anything() -> None:
    # Node 2 (tier 1) has the steeper curve but waits until tier-0 node 1 is at its max.
    nodes = [node(1, tier=0, curve=FLAT), node(2, tier=1, curve=STEEP)]
    assert allocate(350.0, nodes).allocations == {1: 250.0, 2: 100.0}
    assert allocate(450.0, nodes).allocations == {1: 300.0, 2: 150.0}


def test_demand_caps_a_node_and_the_rest_goes_to_others() -> None:
    nodes = [node(1, tier=0, demand_w=180.0), node(2, tier=1, curve=FLAT)]
    result = allocate(400.0, nodes)
    assert result.allocations == {1: 180.0, 2: 220.0}
    assert result.caps_w == {1: 180.0, 2: 300.0}
    assert result.limited_by == {1: "demand", 2: "budget"}


def test_demand_below_the_minimum_still_gets_the_minimum() -> None:
    result = allocate(1000.0, [node(1, demand_w=20.0)])
    assert result.allocations == {1: 100.0}
    assert result.unallocated_w == 900.0


def test_leftover_no_node_can_use_stays_unallocated() -> None:
    result = allocate(1000.0, [node(1), node(2, demand_w=250.0), node(3, tier=2)])
    assert result.allocations == {1: 300.0, 2: 250.0, 3: 300.0}
    assert result.unallocated_w == 150.0 and result.total_w == 850.0
    assert result.limited_by == {1: "max", 2: "demand", 3: "max"}
    assert result.water_level_tok_per_j is None


def test_identical_nodes_at_the_water_level_share_equally() -> None:
    result = allocate(450.0, [node(3), node(1), node(2)])  # 150 W over three 1.0 segments
    assert result.allocations == {1: 150.0, 2: 150.0, 3: 150.0}


def test_non_concave_curve_is_replaced_by_its_upper_hull() -> None:
    # Raw slopes 0.1 then 0.9; the hull is one 0.5 segment, which beats a linear 0.4 node.
    dip = ((100.0, 0.0), (200.0, 10.0), (300.0, 100.0))
    linear = ((100.0, 0.0), (300.0, 80.0))
    result = allocate(300.0, [node(1, curve=dip), node(2, curve=linear)])
    assert result.allocations == {1: 200.0, 2: 100.0}
    assert result.water_level_tok_per_j == pytest.approx(0.5)


def test_node_without_curve_is_linear_at_the_default_slope() -> None:
    # Default 1 tok/J sits between a 2.0 segment and a 0.5 segment.
    curved = ((100.0, 0.0), (200.0, 200.0), (300.0, 250.0))
    nodes = [node(1, curve=curved), node(2, curve=())]
    assert allocate(450.0, nodes).allocations == {1: 200.0, 2: 250.0}
    assert allocate(450.0, nodes, default_slope_tok_per_j=0.25).allocations == {1: 300.0, 2: 150.0}


def test_curve_none_means_no_curve() -> None:
    spec = NodeSpec(1, 100.0, 300.0, 0, None)  # type: ignore[arg-type]
    assert spec.curve == ()
    assert allocate(200.0, [spec]).allocations == {1: 200.0}


def test_fixed_power_node_and_empty_fleet() -> None:
    result = allocate(500.0, [NodeSpec(5, 200.0, 200.0, 0), node(1)])
    assert result.allocations == {1: 300.0, 5: 200.0}
    assert result.limited_by[5] == "max"
    empty = allocate(42.0, [])
    assert empty.allocations == {} and empty.feasible and empty.unallocated_w == 42.0


def test_result_is_ordered_by_node_id_and_independent_of_input_order() -> None:
    nodes = [node(i, tier=i % 3, curve=STEEP if i % 2 else FLAT) for i in range(10, 0, -1)]
    first = allocate(1777.0, nodes)
    assert list(first.allocations) == sorted(first.allocations)
    assert allocate(1777.0, list(reversed(nodes))) == first


def test_details_lists_each_node() -> None:
    result = allocate(400.0, [node(2, demand_w=150.0), node(1)])
    assert result.details() == [
        Allocation(1, 250.0, 300.0, "budget"),
        Allocation(2, 150.0, 150.0, "demand"),
    ]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: allocate(-1.0, []), "budget_w"),
        (lambda: allocate(float("nan"), []), "budget_w"),
        (lambda: allocate(10.0, [node(1), node(1)]), "duplicate node_id 1"),
        (lambda: allocate(10.0, ["node"]), "NodeSpec"),  # type: ignore[list-item]
        (lambda: NodeSpec(1, -5.0, 10.0, 0), "min_w of node 1"),
        (lambda: NodeSpec(1, 50.0, 10.0, 0), "max_w of node 1"),
        (lambda: NodeSpec(1, 5.0, 10.0, -1), "tier of node 1"),
        (lambda: NodeSpec(1, 5.0, 10.0, 0, demand_w=math.inf), "demand_w of node 1"),
        (lambda: NodeSpec("a", 5.0, 10.0, 0), "node_id"),  # type: ignore[arg-type]
        (lambda: allocate(500.0, [node(3, curve=((90.0, 0.0), (300.0, 5.0)))]), "min_w=100.0"),
        (lambda: allocate(500.0, [node(3, curve=((100.0, 0.0), (290.0, 5.0)))]), "max_w=300.0"),
        (lambda: allocate(500.0, [node(3, curve=((100.0, 0.0),))]), "at least 2 points"),
        (lambda: allocate(0.0, [node(3, curve=((100.0, 0.0),))]), "at least 2 points"),
        (
            lambda: allocate(500.0, [node(3, curve=((100.0, 0.0), (100.0, 1.0), (300.0, 5.0)))]),
            "strictly increasing power_w",
        ),
        (
            lambda: allocate(500.0, [node(3, curve=((100.0, 9.0), (200.0, 1.0), (300.0, 5.0)))]),
            "non-decreasing throughput",
        ),
        (
            lambda: allocate(500.0, [node(3, curve=((100.0, 0.0), (300.0, math.nan)))]),
            "finite",
        ),
        (
            lambda: allocate(500.0, [node(3, curve=((100.0, 0.0, 1.0), (300.0, 2.0)))]),  # type: ignore[arg-type]
            "curve of node 3",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(build: object, message: str) -> None:
    with pytest.raises(AllocationError, match=message) as info:
        build()  # type: ignore[operator]
    assert isinstance(info.value, GridlinkError) and isinstance(info.value, ValueError)


# --- properties -----------------------------------------------------------------------------


@st.composite
def nodes_st(draw: st.DrawFn) -> list[NodeSpec]:
    ids = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=10, unique=True))
    nodes = []
    for node_id in ids:
        min_w = float(draw(st.integers(0, 400)))
        shape = draw(st.sampled_from(["concave", "any", "none", "fixed"]))
        if shape == "fixed":
            nodes.append(NodeSpec(node_id, min_w, min_w, draw(st.integers(0, 2))))
            continue
        widths = draw(st.lists(st.integers(1, 200), min_size=1, max_size=6))
        gains = draw(st.lists(st.integers(0, 300), min_size=len(widths), max_size=len(widths)))
        if shape == "concave":  # slopes sorted steepest first
            slopes = sorted((g / 100 for g in gains), reverse=True)
        else:
            slopes = [g / 100 for g in gains]
        curve = [(min_w, float(draw(st.integers(0, 500))))]
        for width, slope in zip(widths, slopes, strict=True):
            power, tok = curve[-1]
            curve.append((power + width, tok + slope * width))
        max_w = curve[-1][0]
        demand = draw(st.none() | st.integers(0, int(max_w) + 100).map(float))
        tier = draw(st.integers(0, 2))
        nodes.append(
            NodeSpec(node_id, min_w, max_w, tier, () if shape == "none" else tuple(curve), demand)
        )
    return nodes


def hull_of(spec: NodeSpec) -> tuple[tuple[float, float], ...]:
    if spec.curve:
        return upper_concave_hull(spec.curve)
    return ((spec.min_w, 0.0), (spec.max_w, spec.max_w - spec.min_w))  # default 1 tok/J


def cap_of(spec: NodeSpec) -> float:
    if spec.demand_w is None:
        return spec.max_w
    return min(spec.max_w, max(spec.min_w, spec.demand_w))


def check_invariants(budget_w: float, nodes: list[NodeSpec], result: AllocationResult) -> None:
    alloc = result.allocations
    assert list(alloc) == sorted(n.node_id for n in nodes)
    sum_min = math.fsum(n.min_w for n in nodes)
    by_id = {n.node_id: n for n in nodes}
    if budget_w < sum_min:
        assert not result.feasible
        assert alloc == {n.node_id: n.min_w for n in nodes}
        assert result.shortfall_kw == pytest.approx((sum_min - budget_w) / 1000)
        return
    assert result.feasible and result.shortfall_kw == 0.0
    total = math.fsum(alloc.values())
    assert total <= budget_w and result.total_w == total
    assert result.unallocated_w == pytest.approx(budget_w - total, abs=1e-9)
    tol = 1e-6 * max(1.0, budget_w)
    for node_id, power_w in alloc.items():
        spec = by_id[node_id]
        assert spec.min_w <= power_w <= cap_of(spec) <= spec.max_w  # bounds and demand caps
    if result.unallocated_w > tol:  # only when nobody can take more
        assert all(alloc[n.node_id] >= cap_of(n) for n in nodes)
    for low in nodes:  # tier priority
        for high in nodes:
            if high.tier > low.tier and alloc[high.node_id] > high.min_w + tol:
                assert alloc[low.node_id] >= cap_of(low) - tol
    for giver in nodes:  # no small transfer within a tier raises total throughput
        for taker in nodes:
            if giver is taker or giver.tier != taker.tier:
                continue
            x_g, x_t = alloc[giver.node_id], alloc[taker.node_id]
            delta = min(1.0, x_g - giver.min_w, cap_of(taker) - x_t)
            if delta <= 1e-9:
                continue
            hull_g, hull_t = hull_of(giver), hull_of(taker)
            lost = evaluate(hull_g, x_g) - evaluate(hull_g, x_g - delta)
            won = evaluate(hull_t, x_t + delta) - evaluate(hull_t, x_t)
            assert won <= lost + 1e-6 * max(1.0, delta), (giver, taker, alloc)


@settings(max_examples=300, deadline=None)
@given(nodes=nodes_st(), fraction=st.floats(-0.2, 1.2), seed=st.integers(0, 2**16))
def test_allocation_properties(nodes: list[NodeSpec], fraction: float, seed: int) -> None:
    sum_min = sum(n.min_w for n in nodes)
    sum_max = sum(n.max_w for n in nodes)
    budget_w = max(0.0, sum_min + fraction * (sum_max - sum_min + 100.0))
    result = allocate(budget_w, nodes)
    check_invariants(budget_w, nodes, result)
    shuffled = random.Random(seed).sample(nodes, len(nodes))
    assert allocate(budget_w, shuffled) == result  # deterministic whatever the order


@settings(max_examples=50, deadline=None)
@given(nodes=nodes_st(), budget_w=st.floats(0, 5000))
def test_allocation_properties_for_any_budget(nodes: list[NodeSpec], budget_w: float) -> None:
    check_invariants(budget_w, nodes, allocate(budget_w, nodes))


@st.composite
def float_nodes_st(draw: st.DrawFn) -> list[NodeSpec]:
    """Non-integer watts, where summing the shares can round above the budget."""
    count = draw(st.integers(2, 30))
    bounds = st.floats(0, 400, allow_nan=False, allow_infinity=False)
    nodes = []
    for node_id in range(count):
        min_w = draw(bounds)
        max_w = min_w + draw(st.floats(0.1, 400))
        nodes.append(NodeSpec(node_id, min_w, max_w, draw(st.integers(0, 1))))
    return nodes


@settings(max_examples=200, deadline=None)
@given(nodes=float_nodes_st(), fraction=st.floats(0, 1))
def test_float_round_off_never_pushes_the_sum_above_the_budget(
    nodes: list[NodeSpec], fraction: float
) -> None:
    sum_min = math.fsum(n.min_w for n in nodes)
    budget_w = sum_min + fraction * (math.fsum(n.max_w for n in nodes) - sum_min)
    result = allocate(budget_w, nodes)
    assert math.fsum(result.allocations.values()) <= budget_w
    assert result.unallocated_w == pytest.approx(0.0, abs=1e-6)


def test_docs_worked_example() -> None:
    """The allocation table in docs/gateway-core.md."""
    nodes = [
        node(1, tier=0, curve=FLAT, demand_w=250.0),
        node(2, tier=1, curve=STEEP),
        node(3, tier=1, curve=()),
        node(4, tier=2, curve=STEEP),
    ]
    result = allocate(700.0, nodes)
    assert result.allocations == {1: 250.0, 2: 150.0, 3: 200.0, 4: 100.0}
    assert result.water_level_tok_per_j == 1.0
    short = allocate(350.0, nodes)
    assert not short.feasible and short.shortfall_kw == pytest.approx(0.05)
    spare = allocate(1300.0, nodes)
    assert spare.allocations == {1: 250.0, 2: 300.0, 3: 300.0, 4: 300.0}
    assert spare.unallocated_w == 150.0
