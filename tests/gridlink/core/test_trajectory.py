"""Per-node trajectories from planner segments and the allocator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridlink.core.allocator import NodeSpec
from gridlink.core.planner import (
    BaselinePolicy,
    PlannerEvent,
    PlannerInterval,
    Segment,
    plan_facility_budget,
)
from gridlink.core.trajectory import NodeSegment, allocate_segments, node_trajectories

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def limited_from_10_to_20_min(limit_kw: float, overhead_kw: float) -> list[Segment]:
    """The facility budget over 30 minutes (baseline and maximum 1 kW) under one event that
    limits the facility to ``limit_kw`` from minute 10 to 20."""
    event = PlannerEvent(1, 0, [PlannerInterval(at(10), at(20), "limit_kw", limit_kw)])
    return plan_facility_budget(
        [event],
        window_start=at(0),
        window_end=at(30),
        baseline=BaselinePolicy(kind="fixed", fixed_kw=1.0),
        facility_max_kw=1.0,
        overhead_kw=overhead_kw,
    )


def test_each_node_gets_a_merged_piecewise_constant_trajectory() -> None:
    # GPU budget: 0.9 kW, then 0.35 kW (limit 0.45 - 0.1 overhead), then 0.9 kW again.
    segments = limited_from_10_to_20_min(limit_kw=0.45, overhead_kw=0.1)
    nodes = [
        NodeSpec(2, 100.0, 300.0, tier=0),
        NodeSpec(1, 100.0, 300.0, tier=1, demand_w=150.0),
    ]
    fleet = allocate_segments(segments, nodes)
    assert [f.result.total_w for f in fleet] == [450.0, 350.0, 450.0]
    assert fleet[0].result is fleet[2].result  # the same budget is allocated once
    assert node_trajectories(fleet) == {
        1: [
            NodeSegment(at(0), at(10), 150.0),
            NodeSegment(at(10), at(20), 100.0),
            NodeSegment(at(20), at(30), 150.0),
        ],
        2: [
            NodeSegment(at(0), at(10), 300.0),
            NodeSegment(at(10), at(20), 250.0),
            NodeSegment(at(20), at(30), 300.0),
        ],
    }


def test_a_node_unaffected_by_the_budget_change_has_one_segment() -> None:
    segments = limited_from_10_to_20_min(limit_kw=0.5, overhead_kw=0.0)
    fleet = allocate_segments(segments, [NodeSpec(7, 100.0, 200.0, tier=0)])
    assert node_trajectories(fleet) == {7: [NodeSegment(at(0), at(30), 200.0)]}
    assert node_trajectories([]) == {}
