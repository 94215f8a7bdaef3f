"""All SQL of the reports: telemetry aggregated per node and settlement interval, facility history
for comparable days, event lineages, and the immutable report rows. Nothing here commits.

Telemetry is read from ``telemetry_minutes`` (per node and minute, exact integer sums of value x
1000 that a database trigger keeps as samples are stored), never from the raw samples: a 4-hour
event over 1,000 nodes at 1 s is 300 k minute rows instead of 18 M samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    cast,
    delete,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import INTERVAL
from sqlalchemy.orm import Session, selectinload

from gridlink.curtailments.schemas import MAX_DURATION_S
from gridlink.db.base import UTCDateTime
from gridlink.models.event import Event, EventInterval, EventSource, EventStatus
from gridlink.models.node import Node
from gridlink.models.report import Report, ReportHistoryInterval
from gridlink.models.telemetry import TelemetryLateArrival, TelemetryMinute
from gridlink.reports.inputs import NodeInterval

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _bucket(session: Session, column: Any, start: datetime, interval_s: int) -> ColumnElement[Any]:
    """The grid interval a timestamp falls in; :func:`_index` turns it into its number.

    PostgreSQL: ``date_bin`` (the interval's start, a timestamp; cheaper per row than epoch
    arithmetic). SQLite stores naive UTC text: whole seconds since ``start`` divided as integers,
    which floors (rows are filtered to ``ts >= start`` and grid boundaries are whole seconds).
    """
    if _is_pg(session):
        step = cast(literal(f"{interval_s} seconds"), INTERVAL)
        return func.date_bin(step, column, literal(start, UTCDateTime()))
    start_s = int((start - EPOCH).total_seconds())
    offset = cast(func.strftime("%s", column), Integer) - start_s
    return offset.self_group().op("/")(interval_s)


def _index(bucket: object, start: datetime, interval_s: int) -> int:
    if isinstance(bucket, datetime):
        return round((bucket - start).total_seconds() / interval_s)
    return int(str(bucket))


def _tune_for_large_aggregates(session: Session) -> None:
    """For this transaction on PostgreSQL: no JIT (seconds of compilation for a query that runs
    once) and enough memory to aggregate node x interval groups without spilling to disk (the
    planner cannot estimate the group count of a computed bucket and over-estimates it)."""
    if _is_pg(session):
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def node_intervals(
    session: Session, *, start: datetime, interval_s: int, count: int
) -> list[NodeInterval]:
    """Per node and interval of the grid: sample count, mean power, throughput and demand (None
    when no sample carried one), QoS-violation count. One grouped scan of the node-minute sums
    (``telemetry_minutes``, exact integers the database keeps as samples arrive): the same
    figures as summing the raw samples, from 60 times fewer rows. ``start`` and ``interval_s``
    must be whole minutes (:func:`gridlink.reports.service.check_interval`)."""
    _check_minute_grid(start, interval_s)
    end = start + timedelta(seconds=interval_s * count)
    _tune_for_large_aggregates(session)
    m = TelemetryMinute
    bucket = _bucket(session, m.minute, start, interval_s).label("bucket")
    stmt = (
        select(
            m.node_id,
            bucket,
            func.sum(m.samples),
            func.sum(m.power_mw),
            func.sum(m.throughput_mtok_s),
            func.sum(m.demand_mtok_s),
            func.sum(m.demand_samples),
            func.sum(m.qos_violations),
        )
        .where(m.minute >= start, m.minute < end)
        .group_by(m.node_id, bucket)
    )
    cells = []
    for node_id, index, samples, power, tput, demand, with_demand, qos in session.execute(stmt):
        n = int(samples)
        cells.append(
            NodeInterval(
                node_id=int(node_id),
                index=_index(index, start, interval_s),
                samples=n,
                power_w=int(power) / n / 1000.0,
                throughput_tok_s=int(tput) / n / 1000.0,
                demand_tok_s=int(demand) / int(with_demand) / 1000.0 if with_demand else None,
                qos_violations=int(qos or 0),
            )
        )
    return sorted(cells, key=lambda c: (c.node_id, c.index))


def facility_kw(
    session: Session,
    *,
    start: datetime,
    interval_s: int,
    count: int,
    overhead_kw: float,
    cached: bool = False,
) -> list[float | None]:
    """Facility power per interval (overhead + each reporting node's mean). None: nobody
    reported. From the node-minute sums, which outlive the raw samples as long as the rollups.

    ``cached`` (the comparable days, all in the past): read the intervals from
    ``report_history_intervals`` when every one is there, else compute them and store them
    there. The database's triggers delete cached intervals whose telemetry changes, so a cached
    figure is always the one computing it again would give.
    """
    values = (
        _cached_mw(session, start=start, interval_s=interval_s, count=count) if cached else None
    )
    if values is None:
        values = _facility_mw(session, start=start, interval_s=interval_s, count=count)
        if cached:
            _cache_mw(session, start=start, interval_s=interval_s, values=values)
    return [None if mw is None else overhead_kw + mw / 1e6 for mw in values]


def _facility_mw(
    session: Session, *, start: datetime, interval_s: int, count: int
) -> list[int | None]:
    """One statement: per node and interval the sample-weighted mean (in mW, rounded), then
    summed per interval as exact integers, so only one row per interval leaves the database and
    the figures do not depend on summation order."""
    _check_minute_grid(start, interval_s)
    end = start + timedelta(seconds=interval_s * count)
    m = TelemetryMinute
    bucket = _bucket(session, m.minute, start, interval_s).label("bucket")
    mean_mw = cast(func.sum(m.power_mw), Float) / func.sum(m.samples)
    per_node = (
        select(bucket, cast(func.round(mean_mw), BigInteger).label("power_mw"))
        .where(m.minute >= start, m.minute < end)
        .group_by(m.node_id, bucket)
        .having(func.sum(m.samples) > 0)
        .subquery()
    )
    stmt = select(per_node.c.bucket, func.sum(per_node.c.power_mw)).group_by(per_node.c.bucket)
    facility: list[int | None] = [None] * count
    for bucket_value, power_mw in session.execute(stmt):
        index = _index(bucket_value, start, interval_s)
        if 0 <= index < count:
            facility[index] = int(power_mw)
    return facility


def history_cached(session: Session, *, start: datetime, interval_s: int, count: int) -> bool:
    """Whether every interval of the grid is in the history cache."""
    h = ReportHistoryInterval
    end = start + timedelta(seconds=interval_s * count)
    stmt = select(func.count()).where(
        h.interval_s == interval_s, h.bucket_start >= start, h.bucket_start < end
    )
    return int(session.scalar(stmt) or 0) == count


def _cached_mw(
    session: Session, *, start: datetime, interval_s: int, count: int
) -> list[int | None] | None:
    h = ReportHistoryInterval
    end = start + timedelta(seconds=interval_s * count)
    rows = session.execute(
        select(h.bucket_start, h.power_mw).where(
            h.interval_s == interval_s, h.bucket_start >= start, h.bucket_start < end
        )
    ).all()
    if len(rows) != count:
        return None
    values: list[int | None] = [None] * count
    for bucket_start, power_mw in rows:
        values[round((bucket_start - start).total_seconds() / interval_s)] = power_mw
    return values


def _cache_mw(
    session: Session, *, start: datetime, interval_s: int, values: list[int | None]
) -> None:
    rows = [
        {
            "interval_s": interval_s,
            "bucket_start": start + timedelta(seconds=i * interval_s),
            "power_mw": mw,
        }
        for i, mw in enumerate(values)
    ]
    table = ReportHistoryInterval.__table__
    module: Any = postgresql if _is_pg(session) else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(
        index_elements=["interval_s", "bucket_start"]
    )
    session.execute(stmt, rows)


def _check_minute_grid(start: datetime, interval_s: int) -> None:
    if interval_s % 60 or start.second or start.microsecond:
        raise ValueError(f"a report grid is whole minutes, got {start.isoformat()} + {interval_s}s")


def nodes_by_id(session: Session, node_ids: list[int]) -> list[Node]:
    if not node_ids:
        return []
    return list(session.scalars(select(Node).where(Node.id.in_(node_ids)).order_by(Node.id)))


def event_id_for_key(session: Session, key: str) -> int | None:
    """The newest event id of the lineage ``<source>:<external_id>`` (None if it is gone)."""
    source, _, external_id = key.partition(":")
    if source not in {s.value for s in EventSource}:
        return None
    stmt = (
        select(Event.id)
        .where(Event.source == EventSource(source), Event.external_id == external_id)
        .order_by(Event.version.desc())
        .limit(1)
    )
    found = session.scalars(stmt).first()
    return None if found is None else int(found)


def lineage(session: Session, event_id: int) -> list[Event]:
    """Every version of the event ``event_id`` belongs to, oldest first (empty if unknown)."""
    event = session.get(Event, event_id)
    if event is None:
        return []
    stmt = (
        select(Event)
        .options(selectinload(Event.intervals))
        .where(Event.source == event.source, Event.external_id == event.external_id)
        .order_by(Event.version)
    )
    return list(session.scalars(stmt))


def events_overlapping(session: Session, *, start: datetime, end: datetime) -> list[Event]:
    """Current, non-cancelled-before-start events with an interval overlapping ``[start, end)``
    (callers clip exactly: interval ends are not stored)."""
    overlapping = select(EventInterval.event_id).where(
        EventInterval.start_at < end,
        EventInterval.start_at > start - timedelta(seconds=MAX_DURATION_S),
    )
    stmt = (
        select(Event)
        .options(selectinload(Event.intervals))
        .where(Event.is_current, Event.id.in_(overlapping))
        .order_by(Event.id)
    )
    return list(session.scalars(stmt))


def events_ended_between(session: Session, *, after: datetime, until: datetime) -> list[Event]:
    """Current events with an interval starting before ``until`` that may end in the range; the
    caller computes each one's end exactly."""
    return [
        e
        for e in events_overlapping(session, start=after, end=until)
        if e.status is not EventStatus.CANCELLED or e.cancelled_at is not None
    ]


# -- stored reports -------------------------------------------------------------------------------


def latest_for_subject(session: Session, subject: str) -> Report | None:
    stmt = select(Report).where(Report.subject == subject).order_by(Report.version.desc()).limit(1)
    return session.scalars(stmt).first()


def subjects_with_reports(session: Session, subjects: list[str]) -> set[str]:
    if not subjects:
        return set()
    return set(session.scalars(select(Report.subject).where(Report.subject.in_(subjects))))


@dataclass(frozen=True, slots=True)
class StoredReport:
    """The fields of a stored version that say what it covers (not its body)."""

    id: int
    subject: str
    version: int
    event_key: str | None
    window_start: datetime
    window_end: datetime
    interval_s: int


def latest_versions_overlapping(
    session: Session, *, start: datetime, end: datetime, lead: timedelta
) -> list[StoredReport]:
    """The latest version of every subject whose window, widened by ``lead`` before it (the
    pre-event window), overlaps ``[start, end]``."""
    newest = (
        select(Report.subject, func.max(Report.version).label("version"))
        .group_by(Report.subject)
        .subquery()
    )
    stmt = (
        select(
            Report.id,
            Report.subject,
            Report.version,
            Report.event_key,
            Report.window_start,
            Report.window_end,
            Report.interval_s,
        )
        .join(
            newest,
            (Report.subject == newest.c.subject) & (Report.version == newest.c.version),
        )
        .where(Report.window_end > start, Report.window_start <= end + lead)
        .order_by(Report.id)
    )
    return [StoredReport(*row) for row in session.execute(stmt)]


def forget_history(session: Session, *, first: datetime, last: datetime) -> None:
    """Drop the cached history intervals that samples in ``[first, last]`` fall in (the triggers
    do it as samples are stored; this closes the window of a cache filled concurrently)."""
    h = ReportHistoryInterval
    session.execute(
        delete(h).where(h.bucket_start <= last, h.bucket_start > first - timedelta(hours=1)),
        execution_options={"synchronize_session": False},
    )


def late_arrivals(session: Session) -> list[TelemetryLateArrival]:
    return list(session.scalars(select(TelemetryLateArrival).order_by(TelemetryLateArrival.id)))


def delete_late_arrivals(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(
            delete(TelemetryLateArrival).where(TelemetryLateArrival.id.in_(ids)),
            execution_options={"synchronize_session": False},
        )


def add(session: Session, report: Report) -> Report:
    session.add(report)
    session.flush()
    return report


def get(session: Session, report_id: int) -> Report | None:
    return session.get(Report, report_id)


def list_reports(
    session: Session, *, event_key: str | None, limit: int, before_id: int | None
) -> list[Report]:
    stmt = select(Report).order_by(Report.id.desc()).limit(limit)
    if event_key is not None:
        stmt = stmt.where(Report.event_key == event_key)
    if before_id is not None:
        stmt = stmt.where(Report.id < before_id)
    return list(session.scalars(stmt))
