"""Retention: raw samples roll up into 1-minute averages, and old rollups are pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridlink.models.node import Node
from gridlink.models.telemetry import TelemetryRollup, TelemetrySample
from gridlink.settings import GridlinkSettings
from gridlink.telemetry.service import downsample_and_prune

NOW = datetime(2026, 7, 20, 12, 0, 30, tzinfo=UTC)


def _node(session: Session, name: str) -> Node:
    node = Node(name=name, gpu_type="H100", gpu_count=1, min_power_w=200, max_power_w=700, curve=[])
    session.add(node)
    session.flush()
    return node


def _sample(node: Node, ts: datetime, power_w: float, qos: bool = False) -> TelemetrySample:
    return TelemetrySample(
        node_id=node.id,
        ts=ts,
        power_w=power_w,
        throughput_tok_s=power_w / 10,
        power_cap_w=600.0,
        qos_violation=qos,
    )


def _count(session: Session, model: type[object]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_downsample_and_prune(db_session: Session, database_url: str) -> None:
    settings = GridlinkSettings(
        database_url=database_url,
        telemetry_raw_retention_days=7,
        telemetry_rollup_retention_days=90,
    )
    a, b = _node(db_session, "a"), _node(db_session, "b")
    old_minute = datetime(2026, 7, 10, 8, 15, tzinfo=UTC)  # 10 days ago: rolled up
    db_session.add_all(
        [_sample(a, old_minute + timedelta(seconds=s), 300.0 + s, qos=s == 30) for s in range(60)]
    )
    db_session.add_all([_sample(b, old_minute + timedelta(seconds=10), 500.0)])
    # Seven days minus one minute ago: still raw.
    db_session.add(_sample(a, NOW - timedelta(days=7) + timedelta(minutes=1), 999.0))
    # A rollup older than 90 days is pruned.
    db_session.add(
        TelemetryRollup(
            node_id=a.id,
            bucket_start=NOW - timedelta(days=91),
            sample_count=1,
            power_w_avg=1.0,
            power_w_max=1.0,
            throughput_tok_s_avg=1.0,
            power_cap_w_avg=None,
            qos_violation_count=0,
        )
    )
    db_session.flush()

    report = downsample_and_prune(db_session, NOW, settings)

    assert report.cutoff == datetime(2026, 7, 13, 12, 0, tzinfo=UTC)
    assert (report.raw_rolled_up, report.rollups_written, report.raw_deleted) == (61, 2, 61)
    assert report.rollups_deleted == 1
    assert _count(db_session, TelemetrySample) == 1
    rollups = {r.node_id: r for r in db_session.scalars(select(TelemetryRollup)).all()}
    ra, rb = rollups[a.id], rollups[b.id]
    assert ra.bucket_start == old_minute and rb.bucket_start == old_minute
    assert ra.sample_count == 60 and abs(ra.power_w_avg - 329.5) < 1e-9
    assert ra.power_w_max == 359.0 and ra.qos_violation_count == 1
    assert abs(ra.throughput_tok_s_avg - 32.95) < 1e-9 and ra.power_cap_w_avg == 600.0
    assert rb.sample_count == 1 and rb.power_w_avg == 500.0

    # A late sample for the rolled-up minute merges in, weighted by count; nothing doubles.
    db_session.add(_sample(a, old_minute + timedelta(seconds=59, microseconds=5), 3295.0))
    db_session.flush()
    again = downsample_and_prune(db_session, NOW, settings)
    assert (again.raw_rolled_up, again.rollups_written, again.raw_deleted) == (1, 1, 1)
    db_session.expire_all()
    ra = db_session.get(TelemetryRollup, (a.id, old_minute))
    assert ra is not None and ra.sample_count == 61
    assert abs(ra.power_w_avg - (329.5 * 60 + 3295.0) / 61) < 1e-9
    assert ra.power_w_max == 3295.0

    # Idempotent once nothing is due.
    third = downsample_and_prune(db_session, NOW, settings)
    assert (third.raw_rolled_up, third.raw_deleted, third.rollups_deleted) == (0, 0, 0)
