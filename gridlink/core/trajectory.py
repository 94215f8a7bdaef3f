"""From a facility trajectory to per-node power trajectories.

The planner gives segments with a GPU budget; each segment's budget is split by the allocator,
and each node's shares are joined into its own piecewise-constant trajectory (what the gateway
stores as one allocation matrix per budget version and streams to the node). Budgets repeat
across segments (the same limit before and after an event), so each distinct budget is
allocated once. Per-node limits (:class:`NodeLimit`, from events targeted at one node) split the
segments at their boundaries and lower the capped node's ``limit_w`` where they apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from gridlink.core.allocator import (
    AllocationResult,
    Fleet,
    NodeSpec,
    allocate_fleet,
    prepare_fleet,
)
from gridlink.core.planner import Segment

__all__ = ["FleetSegment", "NodeLimit", "NodeSegment", "allocate_segments", "node_trajectories"]


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


@dataclass(frozen=True, slots=True)
class NodeLimit:
    """Node ``node_id`` may draw at most ``limit_w`` over ``[start, end)``."""

    node_id: int
    start: datetime
    end: datetime
    limit_w: float


Limits = tuple[tuple[int, float], ...]


def _split(segments: Sequence[Segment], limits: Sequence[NodeLimit]) -> list[Segment]:
    """``segments`` cut at every limit boundary inside them."""
    cuts = sorted({t for lim in limits for t in (lim.start, lim.end)})
    pieces = []
    for segment in segments:
        start = segment.start
        for cut in cuts:
            if start < cut < segment.end:
                pieces.append(replace(segment, start=start, end=cut))
                start = cut
        pieces.append(replace(segment, start=start) if start != segment.start else segment)
    return pieces


def _active(limits: Sequence[NodeLimit], start: datetime) -> Limits:
    """The lowest limit of each node in force at ``start``."""
    lowest: dict[int, float] = {}
    for lim in limits:
        if lim.start <= start < lim.end:
            lowest[lim.node_id] = min(lim.limit_w, lowest.get(lim.node_id, lim.limit_w))
    return tuple(sorted(lowest.items()))


def allocate_segments(
    segments: Sequence[Segment],
    nodes: Sequence[NodeSpec],
    node_limits: Sequence[NodeLimit] = (),
) -> list[FleetSegment]:
    """Allocate every segment's ``gpu_budget_kw`` (converted to W) among ``nodes``, each node
    capped by the ``node_limits`` in force (segments are cut where those change)."""
    by_budget: dict[tuple[float, Limits], AllocationResult] = {}
    prepared: dict[Limits, Fleet] = {}  # checked and prepared once per set of node limits
    fleet = []
    for segment in _split(segments, node_limits) if node_limits else segments:
        budget_w = segment.gpu_budget_kw * 1000.0
        limits = _active(node_limits, segment.start) if node_limits else ()
        key = (budget_w, limits)
        if key not in by_budget:
            if limits not in prepared:
                capped = dict(limits)
                specs = [
                    replace(n, limit_w=capped[n.node_id]) if n.node_id in capped else n
                    for n in nodes
                ]
                prepared[limits] = prepare_fleet(specs)
            by_budget[key] = allocate_fleet(budget_w, prepared[limits])
        fleet.append(FleetSegment(segment, by_budget[key]))
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
