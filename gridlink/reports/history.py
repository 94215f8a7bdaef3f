"""Comparable past days for the high-X-of-Y baseline, read from telemetry history.

Each past day is seen at the event's local wall-clock start time in the facility's time zone,
then interval by interval in elapsed time: across a DST change the UTC window moves by the
offset, the local time of day stays. The day's window starts with the same-day adjustment window
(``report_hxy_adjustment_h`` long, ending ``report_hxy_adjustment_gap_h`` before the event
start), then the gap, then the event intervals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from gridlink.models.event import EventStatus
from gridlink.reports import repository
from gridlink.reports.baselines import ComparableDay
from gridlink.settings import GridlinkSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FILLS_PER_CHECK = 2  # a day of a large fleet takes seconds; the check shares its thread


def _local_start(day: date, wall: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, wall.timetz().replace(tzinfo=None), tzinfo=zone).astimezone(UTC)


def _event_days(session: Session, *, first: date, last: date, zone: ZoneInfo) -> set[date]:
    """Local dates in ``[first, last]`` with an event in force (not cancelled before it)."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    events = repository.events_overlapping(session, start=start, end=end.astimezone(UTC))
    days: set[date] = set()
    for event in events:
        for interval in event.intervals:
            begin = interval.start_at
            finish = begin + timedelta(seconds=interval.duration_s)
            if event.status is EventStatus.CANCELLED and event.cancelled_at is not None:
                finish = min(finish, event.cancelled_at)
            if finish <= begin:
                continue
            day = begin.astimezone(zone).date()
            while day <= finish.astimezone(zone).date():
                days.add(day)
                day += timedelta(days=1)
    return days


def comparable_days(
    session: Session,
    *,
    window_start: datetime,
    count: int,
    interval_s: int,
    settings: GridlinkSettings,
) -> tuple[list[ComparableDay], float | None]:
    """The most recent eligible past days (at most ``report_hxy_y``), and the event day's own
    mean facility power over its adjustment window (None unless fully measured)."""
    zone = ZoneInfo(settings.report_timezone)
    wall = window_start.astimezone(zone)
    adj = max(1, round(settings.report_hxy_adjustment_h * 3600 / interval_s))
    gap = round(settings.report_hxy_adjustment_gap_h * 3600 / interval_s)
    lead = timedelta(seconds=(adj + gap) * interval_s)
    overhead = settings.facility_overhead_kw

    def adjustment_mean(values: list[float | None]) -> float | None:
        if any(v is None for v in values):
            return None
        return sum(v or 0.0 for v in values) / len(values)

    today = adjustment_mean(
        repository.facility_kw(
            session,
            start=window_start - lead,
            interval_s=interval_s,
            count=adj,
            overhead_kw=overhead,
        )
    )
    search = settings.report_hxy_search_days
    first = wall.date() - timedelta(days=search)
    busy = _event_days(session, first=first, last=wall.date() - timedelta(days=1), zone=zone)
    weekend = wall.weekday() >= 5
    days: list[ComparableDay] = []
    for back in range(1, search + 1):
        day = wall.date() - timedelta(days=back)
        same_type = (day.weekday() >= 5) == weekend
        if not same_type or day in busy:
            days.append(ComparableDay(day, (), None, day in busy, same_type))
            continue
        values = repository.facility_kw(
            session,
            start=_local_start(day, wall, zone) - lead,
            interval_s=interval_s,
            count=adj + gap + count,
            overhead_kw=overhead,
            cached=True,  # a past day (its telemetry changing deletes the cached intervals)
        )
        comparable = ComparableDay(day, tuple(values[adj + gap :]), adjustment_mean(values[:adj]))
        days.append(comparable)
        complete = [d for d in days if d.interval_kw and all(v is not None for v in d.interval_kw)]
        if len(complete) >= settings.report_hxy_y:
            break
    return days, today


def fill_settled_days(session: Session, *, now: datetime, settings: GridlinkSettings) -> int:
    """Cache the facility intervals of every settled local day in the comparable-day search
    range, at each scheduled interval length, where some are missing (a new day, or telemetry
    that changed and was forgotten). Run by the scheduler's report check, so a report reads its
    comparable days from the cache instead of aggregating a million node-minutes per day.
    At most :data:`MAX_FILLS_PER_CHECK` (day, interval length) pairs are computed per call, so a
    first run over weeks of history catches up over a few checks instead of one long one.
    Returns the number of pairs computed."""
    zone = ZoneInfo(settings.report_timezone)
    today = now.astimezone(zone).date()
    settled = now - timedelta(seconds=settings.report_settlement_delay_s)
    computed = 0
    for back in range(1, settings.report_hxy_search_days + 1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
        if end > settled:
            continue
        for interval_s in settings.report_scheduled_intervals_s:
            first = start - timedelta(seconds=(start - EPOCH).total_seconds() % interval_s)
            count = -(-int((end - first).total_seconds()) // interval_s)
            if computed >= MAX_FILLS_PER_CHECK:
                return computed
            if repository.history_cached(session, start=first, interval_s=interval_s, count=count):
                continue
            repository.facility_kw(
                session,
                start=first,
                interval_s=interval_s,
                count=count,
                overhead_kw=0.0,
                cached=True,
            )
            computed += 1
    return computed
