"""OpenADR interval timing, pure: where each interval of an event starts and ends.

The rules (User Guide, "intervalPeriod" and "event.duration"; README interoperability notes):

* Intervals run in the order given. One without its own ``intervalPeriod.start`` starts where
  the previous one ended; the first starts at the event's ``intervalPeriod.start``. Interval
  ``id`` is a label, not a sequence number.
* ``0001-01-01`` as a start means "now": the moment this VEN first received the event (the
  caller passes it as ``received_at``), so re-reading the event does not move it.
* ``P9999Y`` means "until further notice": the interval is open-ended. The planner stores
  bounded intervals, so an open-ended one is cut into pieces of at most ``max_piece_s`` up to a
  horizon rounded up to whole weeks after the start (so a later poll extends it only once a week).
* ``randomizeStart`` shifts every start by one offset in ``[-r, +r]``: deterministic per (VEN,
  event), so every poll agrees with the last one.
* ``event.duration`` repeats the set of intervals (longer than their span, ``P9999Y`` = forever)
  or cuts it short (shorter than their span).
* A zero duration asks for nothing (the User Guide's way to neutralise an event).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["FOREVER", "RawPeriod", "Window", "event_windows", "is_forever", "is_now"]

WEEK = timedelta(days=7)
FOREVER = timedelta(days=365 * 9000)  # anything this long is P9999Y ("until further notice")
MAX_WINDOWS = 5000


class TimingError(ValueError):
    """The event's timing cannot be resolved (the message says why)."""


@dataclass(frozen=True)
class RawPeriod:
    """An ``intervalPeriod`` as received: every part optional."""

    start: datetime | None = None
    duration: timedelta | None = None
    randomize_start: timedelta | None = None


@dataclass(frozen=True)
class Window:
    """Where interval number ``index`` (its ``interval_id``) applies: ``[start, end)``, in
    repetition ``repeat`` of the set (``event.duration`` loops; 0 otherwise)."""

    index: int
    interval_id: int
    start: datetime
    end: datetime
    repeat: int = 0


def is_now(start: datetime) -> bool:
    return start.year == 1


def is_forever(duration: timedelta) -> bool:
    return duration >= FOREVER


def _offset(randomize: timedelta | None, seed: str) -> timedelta:
    if randomize is None or not randomize:
        return timedelta(0)
    span_s = abs(randomize.total_seconds())
    fraction = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2**64
    return timedelta(seconds=round((2 * fraction - 1) * span_s, 3))


def _base_windows(
    event_period: RawPeriod | None,
    intervals: Sequence[tuple[int, RawPeriod | None]],
    *,
    received_at: datetime,
    seed: str,
) -> list[tuple[int, int, datetime, timedelta]]:
    default_start = None if event_period is None else event_period.start
    default_duration = None if event_period is None else event_period.duration
    cursor: datetime | None = None
    if default_start is not None:
        cursor = received_at if is_now(default_start) else default_start
    first_randomize = None if event_period is None else event_period.randomize_start
    first_period = intervals[0][1] if intervals else None
    if first_randomize is None and first_period is not None:
        first_randomize = first_period.randomize_start
    shift = _offset(first_randomize, seed)
    out = []
    for index, (interval_id, period) in enumerate(intervals):
        start = cursor
        if period is not None and period.start is not None:
            if is_now(period.start):
                start = cursor if cursor is not None else received_at
            else:
                start = period.start
        duration = period.duration if period is not None and period.duration else None
        duration = duration if duration is not None else default_duration
        if start is None:
            raise TimingError(
                f"interval {interval_id} has no start: neither the event nor the interval "
                "has intervalPeriod.start"
            )
        if duration is None:
            duration = timedelta(0)  # the spec's default PT0S: the interval asks for nothing
        if duration < timedelta(0):
            raise TimingError(f"interval {interval_id} has a negative duration")
        out.append((index, interval_id, start, duration))
        cursor = start + duration if not is_forever(duration) else None
    return [(i, iid, s + shift, d) for i, iid, s, d in out]


def _horizon_cap(first_start: datetime, horizon_end: datetime) -> datetime:
    weeks = max(1, math.ceil((horizon_end - first_start) / WEEK))
    return first_start + weeks * WEEK


def event_windows(
    event_period: RawPeriod | None,
    intervals: Sequence[tuple[int, RawPeriod | None]],
    *,
    event_duration: timedelta | None,
    received_at: datetime,
    horizon_end: datetime,
    seed: str,
    max_piece_s: float,
) -> list[Window]:
    """Every window in which an interval applies (zero-length intervals dropped)."""
    base = _base_windows(event_period, intervals, received_at=received_at, seed=seed)
    if not base:
        return []
    first_start = min(s for _, _, s, _ in base)
    cap = _horizon_cap(first_start, horizon_end)
    pieces: list[Window] = []
    span_end = max(
        (s + d if not is_forever(d) else cap for _, _, s, d in base), default=first_start
    )
    period = span_end - first_start
    if event_duration is not None and event_duration:
        until = cap if is_forever(event_duration) else min(first_start + event_duration, cap)
    else:
        until = span_end
    repeat = 0
    while True:
        offset = period * repeat
        if repeat and (period <= timedelta(0) or first_start + offset >= until):
            break
        for index, interval_id, start, duration in base:
            start = start + offset
            end = cap if is_forever(duration) else start + duration
            end = min(end, until)
            if end <= start or (repeat and end < received_at - timedelta(days=1)):
                continue
            cursor = start
            while cursor < end:
                piece_end = min(end, cursor + timedelta(seconds=max_piece_s))
                pieces.append(Window(index, interval_id, cursor, piece_end, repeat))
                cursor = piece_end
            if len(pieces) > MAX_WINDOWS:
                raise TimingError(f"the event expands to more than {MAX_WINDOWS} intervals")
        repeat += 1
        if until <= span_end:
            break
    return sorted(pieces, key=lambda w: (w.start, w.index))


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
