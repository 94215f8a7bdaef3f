"""Expanding a recurrence rule into occurrence start times (pure).

Occurrences keep the first start's local wall-clock time in the rule's time zone, so a 17:00
curtailment stays at 17:00 local across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gridlink.curtailments.schemas import Recurrence


def occurrences(first_start: datetime, rule: Recurrence | None, *, limit: int) -> list[datetime]:
    """UTC start times: just ``first_start`` without a rule; at most ``limit`` + 1 otherwise (the
    caller refuses a rule that yields more than ``limit``)."""
    if rule is None:
        return [first_start.astimezone(UTC)]
    return [start for _, start in zip(range(limit + 1), _iterate(first_start, rule), strict=False)]


def _iterate(first_start: datetime, rule: Recurrence) -> Iterator[datetime]:
    zone = ZoneInfo(rule.timezone)
    local = first_start.astimezone(zone)
    wall_time = local.timetz().replace(tzinfo=None)
    day: date = local.date()
    emitted = 0
    while True:
        if rule.until is not None and day > rule.until:
            return
        if rule.count is not None and emitted >= rule.count:
            return
        if rule.freq == "daily" or day.weekday() < 5:
            start = datetime.combine(day, wall_time, tzinfo=zone).astimezone(UTC)
            if start >= first_start:
                emitted += 1
                yield start
        day += timedelta(days=1)
