"""From a facility trajectory to per-node power trajectories.

The planner gives segments with a GPU budget; each segment's budget is split by the allocator,
and each node's shares are joined into its own piecewise-constant trajectory (what the gateway
stores as one allocation matrix per budget version and streams to the node). Budgets repeat
across segments (the same limit before and after an event), so each distinct budget is
allocated once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gridlink.core.allocator import (
    AllocationResult,
    Fleet,
    NodeSpec,
    allocate_fleet,
    prepare_fleet,
)
from gridlink.core.planner import Segment

__all__ = ["FleetSegment", "NodeSegment", "allocate_segments", "node_trajectories"]


@dataclass(frozen=True, slots=True)
class FleetSegment:
    """A planner segment with the fleet allocation of its GPU budget."""

    segment: Segment
    result: AllocationResult


@dataclass(frozen=True, slots=True)
class NodeSegment:
    """One node's constant power allocation over ``[start, end)``."""

    start: datetime
    end: datetime
    power_w: float


def allocate_segments(segments: Sequence[Segment], nodes: Sequence[NodeSpec]) -> list[FleetSegment]:
    """Allocate every segment's ``gpu_budget_kw`` (converted to W) among ``nodes``."""
    by_budget: dict[float, AllocationResult] = {}
    prepared: Fleet | None = None  # checked and prepared once, for every distinct budget
    fleet = []
    for segment in segments:
        budget_w = segment.gpu_budget_kw * 1000.0
        if budget_w not in by_budget:
            prepared = prepared or prepare_fleet(nodes)
            by_budget[budget_w] = allocate_fleet(budget_w, prepared)
        fleet.append(FleetSegment(segment, by_budget[budget_w]))
    return fleet


def node_trajectories(fleet: Sequence[FleetSegment]) -> dict[int, list[NodeSegment]]:
    """Each node's trajectory, ordered by node_id; adjacent equal allocations are merged."""
    trajectories: dict[int, list[NodeSegment]] = {}
    for item in fleet:
        start, end = item.segment.start, item.segment.end
        for node_id, power_w in item.result.allocations.items():
            pieces = trajectories.setdefault(node_id, [])
            if pieces and pieces[-1].power_w == power_w and pieces[-1].end == start:
                pieces[-1] = NodeSegment(pieces[-1].start, end, power_w)
            else:
                pieces.append(NodeSegment(start, end, power_w))
    return dict(sorted(trajectories.items()))
