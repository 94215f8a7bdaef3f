"""The per-node minute sums the database keeps as samples are stored: equal to summing the raw
samples, whatever path stored them, with replays skipped and late samples in their own minute;
pruned with the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, func, select
from sqlalchemy.orm import Session

from gridlink.auth.principal import SYSTEM
from gridlink.models.node import Node
from gridlink.models.telemetry import TelemetryMinute, TelemetrySample
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository, service
from gridlink.telemetry.schemas import TelemetrySampleIn

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def _node(session: Session, name: str) -> int:
    node = Node(
        name=name,
        gpu_type="H100-SXM",
        gpu_count=8,
        gpu_min_cap_w=200.0,
        gpu_max_cap_w=700.0,
        min_power_w=2000.0,
        max_power_w=6000.0,
        idle_power_w=400.0,
        curve=[[2000.0, 500.0], [6000.0, 1000.0]],
    )
    session.add(node)
    session.flush()
    return node.id


def _milli_sum(column: Any) -> Any:
    return func.sum(cast(func.round(column * 1000), BigInteger))


def _expected(session: Session) -> dict[tuple[int, datetime], tuple[int, ...]]:
    """The raw samples summed per node and minute in SQL, the way the reports used to (each
    database rounds its own way: PostgreSQL half to even, SQLite half away from zero)."""
    s = TelemetrySample
    minute = repository.minute_floor(s.ts)
    stmt = select(
        s.node_id,
        minute,
        func.count(),
        _milli_sum(s.power_w),
        _milli_sum(s.throughput_tok_s),
        func.coalesce(_milli_sum(s.demand_tok_s), 0),
        func.count(s.demand_tok_s),
        func.sum(cast(s.qos_violation, Integer)),
    ).group_by(s.node_id, minute)
    return {(row[0], row[1]): tuple(int(v) for v in row[2:]) for row in session.execute(stmt)}


def _stored(session: Session) -> dict[tuple[int, datetime], tuple[int, ...]]:
    return {
        (m.node_id, m.minute): (
            m.samples,
            m.power_mw,
            m.throughput_mtok_s,
            m.demand_mtok_s,
            m.demand_samples,
            m.qos_violations,
        )
        for m in session.scalars(select(TelemetryMinute))
    }


def test_minute_sums_follow_every_insert(db_session: Session, settings: GridlinkSettings) -> None:
    a, b = _node(db_session, "a"), _node(db_session, "b")
    rows = [
        {
            "node_id": node,
            "ts": T0 + timedelta(seconds=7 * i + k),
            "power_w": 2000.0 + 13.3371 * i,
            "throughput_tok_s": 400.0 + 0.1237 * i,
            "demand_tok_s": None if i % 5 == 0 else 450.0 + 0.5 * i,
            "qos_violation": i % 11 == 0,
            "sample_id": f"run1:{i}",
        }
        for k, node in enumerate((a, b))
        for i in range(40)
    ]
    repository.bulk_insert(db_session, rows)
    repository.bulk_insert(db_session, rows[:30])  # a replay: nothing inserted, nothing counted
    db_session.add(TelemetrySample(node_id=a, ts=T0, power_w=1.0005, throughput_tok_s=0.0))
    db_session.flush()
    # Late: a sample two hours old, through the ingest service, lands in its own minute and is
    # recorded as a late arrival.
    late = TelemetrySampleIn(ts=T0 - timedelta(hours=2), power_w=2500.0, throughput_tok_s=9.0)
    service.ingest(db_session, b, [late], actor=SYSTEM, now=T0, settings=settings)
    expected = _expected(db_session)
    assert _stored(db_session) == expected
    assert expected[(a, T0)][0] == 9 + 1  # 9 samples in the first minute, and the ORM one
    assert expected[(b, T0 - timedelta(hours=2))][0] == 1


def test_minute_sums_are_pruned_with_the_rollups(
    db_session: Session, settings: GridlinkSettings
) -> None:
    node = _node(db_session, "a")
    rows = [
        {"node_id": node, "ts": T0 - timedelta(days=d), "power_w": 1.0, "throughput_tok_s": 0.0}
        for d in (1, 100)
    ]
    repository.bulk_insert(db_session, rows)
    done = service.downsample_and_prune(db_session, T0, settings)
    assert done.minutes_deleted == 1
    assert [m for _, m in _stored(db_session)] == [T0 - timedelta(days=1)]
