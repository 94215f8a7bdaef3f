"""A version's per-node events carry exactly the REST API's NodeTrajectory JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gridlink.budgets.schemas import NodeTrajectory
from gridlink.streams.snapshot import Segment, VersionSnapshot
from tests.gridlink.streams.sse_parse import parse_sse

T0 = datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_fast_json_is_the_pydantic_json_byte_for_byte() -> None:
    powers = [500.0, 0.1 + 0.2, 1e-7, 1234.5678, 3e20, 0.0]
    segments = {
        node_id: [
            Segment(T0 + timedelta(minutes=i), T0 + timedelta(minutes=i + 1), powers[i])
            for i in range(node_id % len(powers) + 1)
        ]
        for node_id in range(1, 20)
    }
    snapshot = VersionSnapshot(42, T0, segments)
    for node_id in [*segments, 999]:  # 999: a node without allocation in this version
        assert snapshot.trajectory_json(node_id) == snapshot.trajectory(node_id).model_dump_json()


def test_allocation_event_round_trips_through_the_client_parser() -> None:
    snapshot = VersionSnapshot(7, T0, {3: [Segment(T0, T0 + timedelta(hours=1), 650.0)]})
    snapshot.prerender()
    (event,) = parse_sse(snapshot.allocation_event(3))
    assert (event.event, event.id) == ("allocation", "7")
    trajectory = NodeTrajectory.model_validate_json(event.data)
    assert trajectory == snapshot.trajectory(3)
    assert trajectory.power_at(T0 + timedelta(minutes=30)) == 650.0
