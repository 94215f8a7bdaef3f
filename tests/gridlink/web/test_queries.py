"""Facility power history: per-bucket sums of per-node averages, raw samples and rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gridlink.models.node import Node
from gridlink.models.telemetry import TelemetryRollup, TelemetrySample
from gridlink.web.queries import bucket_for, facility_power_history

T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)


def _node(session: Session, name: str) -> int:
    node = Node(
        name=name,
        gpu_type="H100",
        gpu_count=1,
        min_power_w=200.0,
        max_power_w=700.0,
        gpu_min_cap_w=200.0,
        gpu_max_cap_w=700.0,
    )
    session.add(node)
    session.flush()
    return node.id


def test_sums_node_averages_per_bucket_from_raw_and_rollups(db_session: Session) -> None:
    a, b = _node(db_session, "a"), _node(db_session, "b")
    raw_since = T0 - timedelta(minutes=10)
    for minute in range(10):  # raw: the last 10 minutes, a at 100/300 W, b at 500 W
        ts = raw_since + timedelta(minutes=minute, seconds=10)
        db_session.add_all(
            [
                TelemetrySample(node_id=a, ts=ts, power_w=100.0, throughput_tok_s=0.0),
                TelemetrySample(
                    node_id=a, ts=ts + timedelta(seconds=20), power_w=300.0, throughput_tok_s=0.0
                ),
                TelemetrySample(node_id=b, ts=ts, power_w=500.0, throughput_tok_s=0.0),
            ]
        )
    for minute in range(1, 11):  # rollups: the 10 minutes before, a only, 1000 W
        db_session.add(
            TelemetryRollup(
                node_id=a,
                bucket_start=raw_since - timedelta(minutes=minute),
                sample_count=6,
                power_w_avg=1000.0,
                power_w_max=1000.0,
                throughput_tok_s_avg=0.0,
                power_cap_w_avg=None,
                qos_violation_count=0,
            )
        )
    db_session.flush()
    points = facility_power_history(
        db_session,
        start=T0 - timedelta(minutes=20),
        end=T0,
        bucket_s=300.0,
        overhead_kw=2.0,
        raw_since=raw_since,
    )
    assert [p.facility_power_kw for p in points] == [3.0, 3.0, 2.7, 2.7]
    assert points[0].at == T0 - timedelta(minutes=20) + timedelta(seconds=150)
    assert (
        facility_power_history(
            db_session,
            start=T0 + timedelta(hours=1),
            end=T0 + timedelta(hours=2),
            bucket_s=60.0,
            overhead_kw=0.0,
            raw_since=raw_since,
        )
        == []
    )


def test_bucket_for_caps_the_points() -> None:
    assert bucket_for(timedelta(hours=1)) == 10.0
    assert bucket_for(timedelta(days=7)) == 7 * 86400 / 720
