"""Expanding a recurrence rule into occurrence start times (pure), with RFC 5545 rules.

A rule is either the short form (``freq`` ``daily`` or ``weekdays`` with ``count`` or ``until``)
or an RFC 5545 ``RRULE`` string as calendars write it (``FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8``);
both are expanded by ``dateutil.rrule``. Occurrences keep the first start's local wall-clock time
in the rule's time zone, so a 17:00 curtailment stays at 17:00 local across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from itertools import islice
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateutil import rrule as rr

if TYPE_CHECKING:
    from gridlink.curtailments.schemas import Recurrence

_WEEKDAYS = (rr.MO, rr.TU, rr.WE, rr.TH, rr.FR)


def occurrences(first_start: datetime, rule: Recurrence | None, *, limit: int) -> list[datetime]:
    """UTC start times: just ``first_start`` without a rule; at most ``limit`` + 1 otherwise (the
    caller refuses a rule that yields more than ``limit``)."""
    if rule is None:
        return [first_start.astimezone(UTC)]
    return list(islice(_iterate(first_start, rule), limit + 1))


def _iterate(first_start: datetime, rule: Recurrence) -> Iterator[datetime]:
    zone = ZoneInfo(rule.timezone)
    local = first_start.astimezone(zone).replace(tzinfo=None)  # wall clock, naive for dateutil
    for wall in _local_rule(rule, local):
        # Re-attaching the zone keeps the wall-clock time (a nonexistent or repeated local time
        # takes its first reading, fold=0), then converts to UTC.
        start = wall.replace(tzinfo=zone).astimezone(UTC)
        if start >= first_start:
            yield start


def _local_rule(rule: Recurrence, dtstart: datetime) -> rr.rrule:
    if rule.rrule is not None:
        return parse_rrule(rule.rrule, dtstart)
    until = None if rule.until is None else datetime.combine(rule.until, time.max)
    byweekday = _WEEKDAYS if rule.freq == "weekdays" else None
    return rr.rrule(rr.DAILY, dtstart=dtstart, count=rule.count, until=until, byweekday=byweekday)


def parse_rrule(text: str, dtstart: datetime) -> rr.rrule:
    """One RFC 5545 ``RRULE`` (no DTSTART, RDATE or EXDATE: the start is the curtailment's own)."""
    parsed = rr.rrulestr(text, dtstart=dtstart, forceset=False)
    if not isinstance(parsed, rr.rrule):
        raise ValueError("must be a single RRULE")
    return parsed
