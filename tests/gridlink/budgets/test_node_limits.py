"""Node-targeted event intervals become per-node limits, not facility limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridlink.budgets.inputs import node_limits, planner_events
from gridlink.core.allocator import NodeSpec
from gridlink.core.trajectory import NodeLimit
from gridlink.models.event import Event, EventInterval, SignalKind

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def _event(*intervals: tuple[SignalKind, float, int | None]) -> Event:
    return Event(
        id=5,
        priority=0,
        intervals=[
            EventInterval(
                start_at=T0, duration_s=600.0, signal_kind=kind, value=value, node_id=node_id
            )
            for kind, value, node_id in intervals
        ],
    )


def test_node_intervals_are_node_limits_in_watts() -> None:
    event = _event(
        (SignalKind.LIMIT_KW, 3.0, 1),
        (SignalKind.REDUCTION_KW, 1.0, 2),
        (SignalKind.REDUCTION_PCT, 25.0, 2),
        (SignalKind.REDUCTION_PCT, 10.0, 9),  # a node not in the fleet: nothing
        (SignalKind.REDUCTION_KW, 9.0, 1),  # more than the node's maximum: 0
    )
    specs = [NodeSpec(1, 2000.0, 6000.0, tier=0), NodeSpec(2, 2000.0, 6000.0, tier=0)]
    end = T0 + timedelta(minutes=10)
    assert node_limits([event], specs) == [
        NodeLimit(1, T0, end, 3000.0),
        NodeLimit(2, T0, end, 5000.0),
        NodeLimit(2, T0, end, 4500.0),
        NodeLimit(1, T0, end, 0.0),
    ]


def test_the_planner_sees_only_facility_intervals() -> None:
    event = _event((SignalKind.LIMIT_KW, 3.0, 1), (SignalKind.LIMIT_KW, 50.0, None))
    (planned,) = planner_events([event])
    assert [i.value for i in planned.intervals] == [50.0]
