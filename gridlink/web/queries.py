"""SQL behind the facility page: measured facility power over a window, in time buckets.

Facility power in a bucket is the sum over nodes of each node's average power in that bucket (a
node that did not report in a bucket adds nothing). Raw samples are used where they are kept;
older windows are served from the 1-minute rollups, so a week of history is one grouped scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from gridlink.db.functions import epoch_s
from gridlink.models.telemetry import TelemetryRollup, TelemetrySample


@dataclass(frozen=True)
class PowerPoint:
    at: datetime
    facility_power_kw: float


def _bucketed(
    session: Session,
    ts: Any,
    power: Any,
    node_id: Any,
    *,
    t0: float,
    start: datetime,
    end: datetime,
    bucket_s: float,
) -> dict[int, float]:
    """{bucket index: summed per-node average power (W)} over ``[start, end)``; bucket 0
    starts at ``t0`` (epoch seconds)."""
    bucket: ColumnElement[Any] = func.floor((epoch_s(ts) - t0) / bucket_s)
    per_node = (
        select(bucket.label("b"), node_id.label("n"), func.avg(power).label("p"))
        .where(ts >= start, ts < end)
        .group_by(bucket, node_id)
        .subquery()
    )
    stmt = select(per_node.c.b, func.sum(per_node.c.p)).group_by(per_node.c.b)
    return {int(b): float(p) for b, p in session.execute(stmt)}


def facility_power_history(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    bucket_s: float,
    overhead_kw: float,
    raw_since: datetime,
) -> list[PowerPoint]:
    """Measured facility power (kW, overhead included) per bucket of ``bucket_s`` seconds over
    ``[start, end)``, from raw samples after ``raw_since`` and from rollups before it; each
    point is stamped at its bucket's middle. Buckets with no telemetry are left out."""
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    t0 = start.timestamp()
    sums: dict[int, float] = {}
    if start < raw_since:
        r = TelemetryRollup
        sums.update(
            _bucketed(
                session,
                r.bucket_start,
                r.power_w_avg,
                r.node_id,
                t0=t0,
                start=start,
                end=min(end, raw_since),
                bucket_s=bucket_s,
            )
        )
    if end > raw_since:
        s = TelemetrySample
        raw = _bucketed(
            session,
            s.ts,
            s.power_w,
            s.node_id,
            t0=t0,
            start=max(start, raw_since),
            end=end,
            bucket_s=bucket_s,
        )
        for b, watts in raw.items():  # the one bucket straddling raw_since: the fuller figure
            sums[b] = max(sums.get(b, 0.0), watts)
    return [
        PowerPoint(
            at=datetime.fromtimestamp(t0 + (b + 0.5) * bucket_s, UTC),
            facility_power_kw=overhead_kw + watts / 1000.0,
        )
        for b, watts in sorted(sums.items())
        if b >= 0
    ]


def bucket_for(window: timedelta, *, max_points: int = 720, min_bucket_s: float = 10.0) -> float:
    """A bucket length that gives at most ``max_points`` points over ``window``."""
    return max(min_bucket_s, window.total_seconds() / max_points)
