"""SQL for telemetry: bulk insert, latest-per-node, window statistics and 1-minute rollups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, cast, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gridlink.db.functions import minute_floor
from gridlink.models.telemetry import (
    TelemetryLateArrival,
    TelemetryMinute,
    TelemetryRollup,
    TelemetrySample,
)


def _samples_table() -> Table:
    """The Core table: a Core executemany skips the ORM's per-row bulk-insert bookkeeping.
    (``__table__`` is typed as any selectable; the metadata holds it as the ``Table`` it is.)"""
    return TelemetrySample.metadata.tables[TelemetrySample.__tablename__]


def bulk_insert(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany (multi-row VALUES where the driver supports it); no ORM objects. A row
    whose ``(node_id, sample_id)`` is already stored is skipped (ON CONFLICT DO NOTHING)."""
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(_samples_table()).on_conflict_do_nothing(
            index_elements=["node_id", "sample_id"]
        )
    elif dialect == "sqlite":
        stmt = sqlite_insert(_samples_table()).on_conflict_do_nothing(
            index_elements=["node_id", "sample_id"]
        )
    else:
        stmt = insert(_samples_table())
    session.execute(stmt, list(rows))


def latest_per_node(session: Session, *, since: datetime, until: datetime) -> list[TelemetrySample]:
    """Each node's most recent sample in ``[since, until]``."""
    newest = (
        select(TelemetrySample.node_id, func.max(TelemetrySample.ts).label("ts"))
        .where(TelemetrySample.ts >= since, TelemetrySample.ts <= until)
        .group_by(TelemetrySample.node_id)
        .subquery()
    )
    stmt = (
        select(TelemetrySample)
        .join(
            newest,
            (TelemetrySample.node_id == newest.c.node_id) & (TelemetrySample.ts == newest.c.ts),
        )
        .order_by(TelemetrySample.node_id, TelemetrySample.id.desc())
    )
    latest: dict[int, TelemetrySample] = {}
    for sample in session.scalars(stmt):
        latest.setdefault(sample.node_id, sample)
    return list(latest.values())


def latest_for_node(session: Session, node_id: int) -> TelemetrySample | None:
    stmt = (
        select(TelemetrySample)
        .where(TelemetrySample.node_id == node_id)
        .order_by(TelemetrySample.ts.desc(), TelemetrySample.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


@dataclass(frozen=True)
class WindowStats:
    node_id: int
    samples: int
    power_w_avg: float
    power_w_max: float
    max_requests_waiting: int | None
    qos_violations: int


def window_stats(session: Session, *, since: datetime, until: datetime) -> list[WindowStats]:
    """Per-node statistics over ``[since, until]``."""
    qos = func.sum(cast(TelemetrySample.qos_violation, Integer))
    stmt = (
        select(
            TelemetrySample.node_id,
            func.count(),
            func.avg(TelemetrySample.power_w),
            func.max(TelemetrySample.power_w),
            func.max(TelemetrySample.requests_waiting),
            qos,
        )
        .where(TelemetrySample.ts >= since, TelemetrySample.ts <= until)
        .group_by(TelemetrySample.node_id)
        .order_by(TelemetrySample.node_id)
    )
    return [
        WindowStats(
            node_id=row[0],
            samples=int(row[1]),
            power_w_avg=float(row[2]),
            power_w_max=float(row[3]),
            max_requests_waiting=None if row[4] is None else int(row[4]),
            qos_violations=int(row[5] or 0),
        )
        for row in session.execute(stmt)
    ]


@dataclass(frozen=True)
class MinuteAggregate:
    node_id: int
    bucket_start: datetime
    sample_count: int
    power_w_avg: float
    power_w_max: float
    throughput_tok_s_avg: float
    power_cap_w_avg: float | None
    qos_violation_count: int


def _minute_aggregates(session: Session, *conditions: Any) -> list[MinuteAggregate]:
    """Raw samples matching ``conditions``, grouped by node and minute."""
    bucket = minute_floor(TelemetrySample.ts)
    qos = func.sum(cast(TelemetrySample.qos_violation, Integer))
    stmt = (
        select(
            TelemetrySample.node_id,
            bucket.label("bucket"),
            func.count(),
            func.avg(TelemetrySample.power_w),
            func.max(TelemetrySample.power_w),
            func.avg(TelemetrySample.throughput_tok_s),
            func.avg(TelemetrySample.power_cap_w),
            qos,
        )
        .where(*conditions)
        .group_by(TelemetrySample.node_id, bucket)
        .order_by(TelemetrySample.node_id, bucket)
    )
    return [
        MinuteAggregate(
            node_id=row[0],
            bucket_start=row[1],
            sample_count=int(row[2]),
            power_w_avg=float(row[3]),
            power_w_max=float(row[4]),
            throughput_tok_s_avg=float(row[5]),
            power_cap_w_avg=None if row[6] is None else float(row[6]),
            qos_violation_count=int(row[7] or 0),
        )
        for row in session.execute(stmt)
    ]


def minute_aggregates_before(session: Session, cutoff: datetime) -> list[MinuteAggregate]:
    """Raw samples older than ``cutoff`` grouped by node and minute."""
    return _minute_aggregates(session, TelemetrySample.ts < cutoff)


def node_minutes(
    session: Session, node_id: int, *, since: datetime, until: datetime
) -> list[MinuteAggregate]:
    """One node's raw samples in ``[since, until)`` grouped by minute."""
    return _minute_aggregates(
        session,
        TelemetrySample.node_id == node_id,
        TelemetrySample.ts >= since,
        TelemetrySample.ts < until,
    )


def rollups_between(
    session: Session, *, first: datetime, last: datetime
) -> dict[tuple[int, datetime], TelemetryRollup]:
    """Existing rollups with ``first <= bucket_start <= last``, keyed by (node, minute)."""
    stmt = select(TelemetryRollup).where(
        TelemetryRollup.bucket_start >= first, TelemetryRollup.bucket_start <= last
    )
    return {(r.node_id, r.bucket_start): r for r in session.scalars(stmt)}


def delete_raw_before(session: Session, cutoff: datetime) -> int:
    result = session.execute(
        delete(TelemetrySample).where(TelemetrySample.ts < cutoff),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def delete_rollups_before(session: Session, cutoff: datetime) -> int:
    result = session.execute(
        delete(TelemetryRollup).where(TelemetryRollup.bucket_start < cutoff),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def delete_minutes_before(session: Session, cutoff: datetime) -> int:
    result = session.execute(
        delete(TelemetryMinute).where(TelemetryMinute.minute < cutoff),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def record_late_arrival(
    session: Session,
    *,
    node_id: int,
    first_ts: datetime,
    last_ts: datetime,
    samples: int,
    stored_at: datetime,
) -> None:
    session.add(
        TelemetryLateArrival(
            node_id=node_id,
            first_ts=first_ts,
            last_ts=last_ts,
            samples=samples,
            stored_at=stored_at,
        )
    )


def rollups_for_node(
    session: Session, node_id: int, *, since: datetime, until: datetime
) -> list[TelemetryRollup]:
    stmt = (
        select(TelemetryRollup)
        .where(
            TelemetryRollup.node_id == node_id,
            TelemetryRollup.bucket_start >= since,
            TelemetryRollup.bucket_start < until,
        )
        .order_by(TelemetryRollup.bucket_start)
    )
    return list(session.scalars(stmt))
