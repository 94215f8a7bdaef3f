"""Per-node limits: the allocator caps a node at its ``limit_w``; segments are cut where the
limits change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridlink.core.allocator import NodeSpec, allocate
from gridlink.core.planner import BaselinePolicy, plan_facility_budget
from gridlink.core.trajectory import NodeLimit, NodeSegment, allocate_segments, node_trajectories
from gridlink.errors import AllocationError

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_limited_node_is_capped_and_the_rest_goes_to_the_others() -> None:
    nodes = [NodeSpec(1, 100.0, 500.0, tier=0, limit_w=200.0), NodeSpec(2, 100.0, 500.0, tier=0)]
    result = allocate(800.0, nodes)
    assert result.allocations == {1: 200.0, 2: 500.0}
    assert result.caps_w[1] == 200.0
    assert result.limited_by == {1: "limit", 2: "max"}


def test_a_limit_below_the_minimum_leaves_the_node_at_its_minimum() -> None:
    result = allocate(1000.0, [NodeSpec(1, 100.0, 500.0, tier=0, limit_w=20.0)])
    assert result.allocations == {1: 100.0}


def test_a_limit_above_the_demand_cap_changes_nothing() -> None:
    spec = NodeSpec(1, 100.0, 500.0, tier=0, demand_w=300.0, limit_w=400.0)
    result = allocate(1000.0, [spec])
    assert result.allocations == {1: 300.0}
    assert result.limited_by == {1: "demand"}


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(AllocationError, match="limit_w of node 1"):
        NodeSpec(1, 100.0, 500.0, tier=0, limit_w=-1.0)


@given(
    budget_w=st.floats(0, 3000),
    limits=st.lists(st.one_of(st.none(), st.floats(0, 1000)), min_size=3, max_size=3),
)
def test_no_node_ever_exceeds_its_limit(budget_w: float, limits: list[float | None]) -> None:
    nodes = [NodeSpec(i, 100.0, 800.0, tier=i % 2, limit_w=limit) for i, limit in enumerate(limits)]
    result = allocate(budget_w, nodes)
    for i, limit in enumerate(limits):
        if limit is not None:
            assert result.allocations[i] <= max(limit, 100.0) + 1e-9
    if result.feasible:
        assert result.total_w <= budget_w + 1e-9


def test_segments_are_cut_where_a_node_limit_starts_and_ends() -> None:
    segments = plan_facility_budget(
        [],
        window_start=at(0),
        window_end=at(30),
        baseline=BaselinePolicy(kind="fixed", fixed_kw=1.0),
        facility_max_kw=1.0,
        overhead_kw=0.0,
    )
    nodes = [NodeSpec(1, 100.0, 300.0, tier=0), NodeSpec(2, 100.0, 300.0, tier=0)]
    limits = [NodeLimit(1, at(10), at(20), 150.0), NodeLimit(1, at(15), at(20), 120.0)]
    fleet = allocate_segments(segments, nodes, limits)
    assert node_trajectories(fleet) == {
        1: [
            NodeSegment(at(0), at(10), 300.0),
            NodeSegment(at(10), at(15), 150.0),
            NodeSegment(at(15), at(20), 120.0),  # the lowest of two limits in force
            NodeSegment(at(20), at(30), 300.0),
        ],
        2: [NodeSegment(at(0), at(30), 300.0)],
    }
    assert fleet[0].result is fleet[-1].result  # same budget and limits: allocated once
