"""Measured and baseline facility power per report interval, for the OpenADR reports.

Primary source: the audit report on the gridlink event (``gridlink.reports.service.
delivered_figures``), at one settlement interval on which every report interval starts and
ends, with the baseline method ``openadr_report_baseline`` (default ``model``, the counterfactual
the audit reports treat as primary: docs/reports.md). An interval's figures are the mean of the
audit rows inside it, so what the VTN receives is the audit report's figures.

Fallback, interval by interval, to the pre-event average (mean facility power over
``baseline_window_min`` before the event) and the interval's telemetry when the audit figures
are not available: no gridlink event behind the VTN event (it asked for nothing this VEN acts
on), the audit refuses the event (cancelled before it began), no settlement interval fits the
report intervals (boundaries off the whole-second grid, e.g. after ``randomizeStart``), an audit
row is missing or unmeasured in the interval, or the chosen baseline has no value there (no
stock curves for ``model``, too few comparable days for ``high_x_of_y``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gridlink.errors import GridlinkError
from gridlink.reports import service as audit_reports
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository as telemetry_repository

__all__ = ["IntervalFigures", "interval_figures", "measured_kw", "settlement_interval_s"]

log = logging.getLogger(__name__)

DAY_S = 86400
PRE_EVENT = "pre_event_average"

ReportInterval = tuple[int, datetime, datetime]


@dataclass(frozen=True)
class IntervalFigures:
    """Facility power over one report interval (kW), and where the figures came from
    (``audit:<baseline>@<interval_s>`` or ``pre_event_average``)."""

    measured_kw: float | None
    baseline_kw: float | None
    source: str


def measured_kw(
    session: Session, start: datetime, end: datetime, settings: GridlinkSettings
) -> float | None:
    """Average facility power over ``[start, end)`` from raw telemetry; None without samples."""
    stats = telemetry_repository.window_stats(
        session, since=start, until=end - timedelta(microseconds=1)
    )
    if not stats:
        return None
    return settings.facility_overhead_kw + sum(s.power_w_avg for s in stats) / 1000.0


def _epoch_s(at: datetime) -> float:
    return at.timestamp()


def settlement_interval_s(intervals: Sequence[ReportInterval], preferred_s: int) -> int | None:
    """The audit settlement interval to read: ``preferred_s`` when every report interval
    starts and ends on its grid, else the longest one (whole minutes, 60..3600 s, dividing a
    day: what the audit reports accept) that does; None when none does."""
    edges = [_epoch_s(t) for _, start, end in intervals for t in (start, end)]
    if any(e != int(e) for e in edges):
        return None
    candidates = [preferred_s] + [s for s in range(3600, 59, -60) if DAY_S % s == 0]
    for length in candidates:
        allowed = 60 <= length <= 3600 and length % 60 == 0 and DAY_S % length == 0
        if allowed and all(int(e) % length == 0 for e in edges):
            return length
    return None


def _audit_rows(
    session: Session, settings: GridlinkSettings, event_id: int, interval_s: int
) -> dict[float, dict[str, Any]] | None:
    try:
        with session.begin_nested():  # read only; a failure must not poison the session
            rows = audit_reports.delivered_figures(
                session, event_id, interval_s=interval_s, settings=settings
            )
    except GridlinkError as err:
        log.info("OpenADR report: no audit figures for event %s (%s)", event_id, err)
        return None
    return {_epoch_s(datetime.fromisoformat(r["start"])): r for r in rows}


def _from_audit(
    rows: dict[float, dict[str, Any]], start: datetime, end: datetime, interval_s: int, method: str
) -> tuple[float, float] | None:
    """Mean measured and baseline kW of the audit rows covering ``[start, end)``."""
    first, last = int(_epoch_s(start)), int(_epoch_s(end))
    measured: list[float] = []
    baseline: list[float] = []
    for at in range(first, last, interval_s):
        row = rows.get(float(at))
        if row is None or row["measured_kw"] is None or row["baseline_kw"].get(method) is None:
            return None
        measured.append(float(row["measured_kw"]))
        baseline.append(float(row["baseline_kw"][method]))
    if not measured:
        return None
    return sum(measured) / len(measured), sum(baseline) / len(baseline)


def interval_figures(
    session: Session,
    settings: GridlinkSettings,
    *,
    event_id: int | None,
    event_start: datetime,
    intervals: Sequence[ReportInterval],
) -> list[IntervalFigures]:
    """One :class:`IntervalFigures` per report interval (module docstring for the sources)."""
    method = settings.openadr_report_baseline
    interval_s = settlement_interval_s(intervals, settings.report_interval_s)
    rows = None
    if event_id is not None and interval_s is not None:
        rows = _audit_rows(session, settings, event_id, interval_s)
    pre_event: list[float | None] = []  # computed once, when first needed

    def fallback(start: datetime, end: datetime) -> IntervalFigures:
        if not pre_event:
            before = event_start - timedelta(minutes=settings.baseline_window_min)
            pre_event.append(measured_kw(session, before, event_start, settings))
        return IntervalFigures(measured_kw(session, start, end, settings), pre_event[0], PRE_EVENT)

    figures = []
    for _, start, end in intervals:
        audit = None
        if rows is not None and interval_s is not None:
            audit = _from_audit(rows, start, end, interval_s, method)
        if audit is None:
            figures.append(fallback(start, end))
        else:
            figures.append(IntervalFigures(audit[0], audit[1], f"audit:{method}@{interval_s}"))
    return figures
