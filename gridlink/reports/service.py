"""Reports: assemble the inputs, compute, store an immutable version. Never commits.

A report's subject is an event lineage or a window, at one settlement interval. Generating again
from unchanged inputs returns the stored version (same hash); from changed inputs (late
telemetry, a new event version) it stores a new version linked to the previous one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gridlink.audit import service as audit
from gridlink.auth.principal import Principal
from gridlink.errors import InvalidInputError, NotFoundError
from gridlink.models.node import Node
from gridlink.models.report import Report
from gridlink.reports import repository
from gridlink.reports.baselines import validate_stock_curve
from gridlink.reports.compute import build_report, delivered_rows
from gridlink.reports.history import comparable_days
from gridlink.reports.inputs import (
    NodeProfile,
    ReportConfig,
    ReportInputs,
    Requested,
    content_hash,
    inputs_hash,
)
from gridlink.reports.lineage import (
    describe,
    event_key,
    event_window,
    overlaps,
    requested_segments,
)
from gridlink.settings import GridlinkSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_WINDOW = timedelta(days=7)


def check_interval(interval_s: int) -> int:
    if not 60 <= interval_s <= 3600 or interval_s % 60 or 86_400 % interval_s:
        raise InvalidInputError(
            "interval_s",
            f"must be whole minutes, 60..3600 s, dividing a day (300, 900, ...), got {interval_s}",
        )
    return interval_s


def _floor(at: datetime, interval_s: int) -> datetime:
    seconds = (at - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=seconds - seconds % interval_s)


def _ceil(at: datetime, interval_s: int) -> datetime:
    floor = _floor(at, interval_s)
    return floor if floor == at else floor + timedelta(seconds=interval_s)


def _config(settings: GridlinkSettings, interval_s: int) -> ReportConfig:
    return ReportConfig(
        interval_s=interval_s,
        timezone=settings.report_timezone,
        sample_period_s=settings.report_sample_period_s,
        min_coverage=settings.report_min_coverage,
        tolerance_frac=settings.report_tolerance_frac,
        contracted_kw=settings.effective_report_contracted_kw,
        overhead_kw=settings.facility_overhead_kw,
        hxy_x=settings.report_hxy_x,
        hxy_y=settings.report_hxy_y,
        hxy_adjustment_cap=settings.report_hxy_adjustment_cap,
    )


def _profile(node: Node) -> NodeProfile:
    """The node's stock curve as reported; without one, a straight line from its minimum power at
    no load to its maximum power at its profile curve's top throughput, marked approximate."""
    if node.stock_curve:
        curve = validate_stock_curve(node.stock_curve, f"node {node.id} stock_curve")
        return NodeProfile(node.id, node.name, curve, "reported")
    if len(node.curve) >= 2 and node.curve[-1][1] > 0:
        curve = ((0.0, node.min_power_w), (float(node.curve[-1][1]), node.max_power_w))
        return NodeProfile(node.id, node.name, curve, "approximate")
    return NodeProfile(node.id, node.name, (), "none")


def _subject(kind: str, key: str, interval_s: int) -> str:
    return f"{kind}:{key}@{interval_s}"


def _assemble(
    session: Session,
    *,
    subject: str,
    kind: str,
    event: dict[str, Any] | None,
    window: tuple[datetime, datetime],
    requested: list[Requested],
    interval_s: int,
    settings: GridlinkSettings,
) -> ReportInputs:
    start = _floor(window[0], interval_s)
    end = _ceil(window[1], interval_s)
    pre = timedelta(minutes=settings.report_pre_event_window_min)
    grid_start = _floor(start - pre, interval_s)
    first = round((start - grid_start).total_seconds() / interval_s)
    count = round((end - grid_start).total_seconds() / interval_s)
    cells = repository.node_intervals(session, start=grid_start, interval_s=interval_s, count=count)
    nodes = repository.nodes_by_id(session, sorted({c.node_id for c in cells}))
    days, adjustment = comparable_days(
        session, window_start=start, count=count - first, interval_s=interval_s, settings=settings
    )
    own_key = None if event is None else event["key"]
    others = [
        {"id": e.id, "key": event_key(e), "status": e.status.value}
        for e in repository.events_overlapping(session, start=start, end=end)
        if event_key(e) != own_key and overlaps(e, start, end)
    ]
    return ReportInputs(
        subject=subject,
        kind=kind,
        event=event,
        grid_start=grid_start,
        event_start_index=first,
        interval_count=count,
        requested=tuple(requested),
        nodes=tuple(_profile(n) for n in nodes),
        node_intervals=tuple(cells),
        comparable_days=tuple(days),
        event_day_adjustment_kw=adjustment,
        config=_config(settings, interval_s),
        overlapping_events=tuple(others),
    )


def event_inputs(
    session: Session, event_id: int, *, interval_s: int, settings: GridlinkSettings
) -> ReportInputs:
    """Inputs of the report on the lineage of event ``event_id`` (any of its versions)."""
    check_interval(interval_s)
    versions = repository.lineage(session, event_id)
    if not versions:
        raise NotFoundError("event", event_id)
    window = event_window(versions)
    if window is None:
        raise InvalidInputError(
            "event_id", f"event {event_id} asked for nothing (cancelled before it started)"
        )
    requested = requested_segments(versions)
    key = event_key(versions[-1])
    return _assemble(
        session,
        subject=_subject("event", key, interval_s),
        kind="event",
        event=describe(versions),
        window=window,
        requested=requested,
        interval_s=interval_s,
        settings=settings,
    )


def window_inputs(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    interval_s: int,
    settings: GridlinkSettings,
) -> ReportInputs:
    """Inputs of a report on ``[start, end)``: nothing requested, every baseline still shown."""
    check_interval(interval_s)
    if end <= start:
        raise InvalidInputError("end", f"must be after start ({start.isoformat()})")
    if end - start > MAX_WINDOW:
        raise InvalidInputError("end", f"a window may span at most {MAX_WINDOW.days} days")
    key = f"{_floor(start, interval_s).isoformat()}/{_ceil(end, interval_s).isoformat()}"
    return _assemble(
        session,
        subject=_subject("window", key, interval_s),
        kind="window",
        event=None,
        window=(start, end),
        requested=[],
        interval_s=interval_s,
        settings=settings,
    )


def store(
    session: Session, inputs: ReportInputs, *, trigger: str, actor: Principal, now: datetime
) -> tuple[Report, bool]:
    """Store a new version unless the latest one was computed from the same inputs.
    Returns ``(report, created)``."""
    digest = inputs_hash(inputs)
    latest = repository.latest_for_subject(session, inputs.subject)
    if latest is not None and latest.inputs_hash == digest:
        return latest, False
    body = build_report(inputs)
    report = repository.add(
        session,
        Report(
            subject=inputs.subject,
            version=1 if latest is None else latest.version + 1,
            previous_id=None if latest is None else latest.id,
            event_key=None if inputs.event is None else inputs.event["key"],
            window_start=inputs.window_start,
            window_end=inputs.window_end,
            interval_s=inputs.config.interval_s,
            trigger=trigger if latest is None else "correction",
            generated_at=now,
            generated_by=actor.name,
            inputs_hash=digest,
            content_hash=content_hash(body, digest),
            body=body,
        ),
    )
    audit.record(
        session,
        actor,
        "report.generate",
        "report",
        report.id,
        after={
            "subject": report.subject,
            "version": report.version,
            "previous_id": report.previous_id,
            "content_hash": report.content_hash,
        },
        at=now,
    )
    return report, True


def get_report(session: Session, report_id: int) -> Report:
    report = repository.get(session, report_id)
    if report is None:
        raise NotFoundError("report", report_id)
    return report


def latest_for_event(session: Session, event_id: int, *, interval_s: int) -> Report | None:
    versions = repository.lineage(session, event_id)
    if not versions:
        raise NotFoundError("event", event_id)
    subject = _subject("event", event_key(versions[-1]), interval_s)
    return repository.latest_for_subject(session, subject)


def list_reports(
    session: Session, *, event_id: int | None, limit: int, before_id: int | None
) -> list[Report]:
    key = None
    if event_id is not None:
        versions = repository.lineage(session, event_id)
        if not versions:
            raise NotFoundError("event", event_id)
        key = event_key(versions[-1])
    return repository.list_reports(session, event_key=key, limit=limit, before_id=before_id)


def delivered_figures(
    session: Session, event_id: int, *, interval_s: int, settings: GridlinkSettings
) -> list[dict[str, Any]]:
    """Delivered kW per event interval against every baseline (for the OpenADR reporter): from
    the latest stored report, or computed now (not stored) when there is none yet."""
    report = latest_for_event(session, event_id, interval_s=interval_s)
    if report is not None:
        return delivered_rows(report.body)
    inputs = event_inputs(session, event_id, interval_s=interval_s, settings=settings)
    return delivered_rows(build_report(inputs))


def event_report(
    session: Session,
    event_id: int,
    *,
    interval_s: int,
    regenerate: bool,
    actor: Principal,
    now: datetime,
    settings: GridlinkSettings,
) -> Report:
    """The latest stored report on the event; generated (and stored) when there is none yet or
    ``regenerate`` asks to pick up late data (unchanged inputs keep the stored version)."""
    report = latest_for_event(session, event_id, interval_s=check_interval(interval_s))
    if report is None or regenerate:
        inputs = event_inputs(session, event_id, interval_s=interval_s, settings=settings)
        report, _ = store(session, inputs, trigger="request", actor=actor, now=now)
    return report
