"""When to post which report: a reportDescriptor's timing over an event's intervals (pure).

The intervals are the event's, in time order, repetitions included (an event whose duration
loops its intervals has interval ``k`` of every loop). A descriptor's timing fields (OpenADR 3.1
``reportDescriptor``, defaults in brackets) are read as follows, ``historical = true``:

- ``startInterval`` [-1]: the interval at whose end the first report is generated; -1 is the
  last interval, except with a ``frequency`` > 0, where the first report comes after the first
  ``numIntervals`` (or ``frequency``) intervals;
- ``numIntervals`` [-1]: how many intervals a report covers, ending with the one it is generated
  at (the User Guide's "periodic reporting" figure); -1: every interval up to it;
- ``frequency`` [-1]: intervals between two reports; -1 (and 0, "ad hoc", where the VEN may
  choose): ``numIntervals``;
- ``repeat`` [1]: how many reports; -1: as long as the event has intervals.

So ``startInterval=1, numIntervals=2, frequency=2, repeat=3`` gives reports on intervals 0-1,
2-3 and 4-5, each posted once its last interval has ended, and the defaults give one report on
every interval after the last. ``historical = false`` (forecasts) is not supported: such a
descriptor gives no slot (:data:`FORECAST`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["FORECAST", "ReportSlot", "descriptor_slots", "due_slots"]

FORECAST = "forecast (historical = false) reports are not supported"

ReportInterval = tuple[int, datetime, datetime]


@dataclass(frozen=True)
class ReportSlot:
    """One report: intervals ``first..last`` (indices, inclusive), due at the end of ``last``.

    ``key`` names it stably across polls (the starts of its first and last intervals: an event
    deleted mid-interval keeps the keys of the reports already posted)."""

    key: str
    first: int
    last: int
    due_at: datetime
    payload_types: tuple[str, ...]


def _int(descriptor: Mapping[str, Any], name: str, default: int) -> int:
    value = descriptor.get(name)
    return default if value is None or isinstance(value, bool) else int(value)


def _ends(descriptor: Mapping[str, Any], count: int) -> Iterator[tuple[int, int]]:
    """``(first, last)`` of every report the descriptor asks for over ``count`` intervals."""
    start = _int(descriptor, "startInterval", -1)
    num = _int(descriptor, "numIntervals", -1)
    frequency = _int(descriptor, "frequency", -1)
    repeat = _int(descriptor, "repeat", 1)
    if start < 0:
        start = (num if num > 0 else frequency) - 1 if frequency > 0 else count - 1
    width = num if num > 0 else start + 1
    step = frequency if frequency > 0 else width
    made = 0
    last = start
    while last < count and (repeat < 0 or made < max(repeat, 1)):
        yield max(0, last - width + 1), last
        made += 1
        last += step


def descriptor_slots(
    descriptor: Mapping[str, Any], intervals: Sequence[ReportInterval]
) -> list[ReportSlot]:
    """Every report ``descriptor`` asks for over ``intervals`` (module docstring)."""
    if descriptor.get("historical") is False:
        return []
    payload_type = str(descriptor.get("payloadType"))
    slots = []
    for first, last in _ends(descriptor, len(intervals)):
        key = f"{intervals[first][1].isoformat()}..{intervals[last][1].isoformat()}"
        slots.append(ReportSlot(key, first, last, intervals[last][2], (payload_type,)))
    return slots


def due_slots(
    descriptors: Sequence[Mapping[str, Any]],
    intervals: Sequence[ReportInterval],
    *,
    now: datetime,
    posted: set[str],
) -> list[ReportSlot]:
    """The reports due at ``now`` and not yet posted, one per slot key (descriptors with the
    same slot share one report), in time order."""
    merged: dict[str, ReportSlot] = {}
    for descriptor in descriptors:
        for slot in descriptor_slots(descriptor, intervals):
            if slot.key in posted or slot.due_at > now:
                continue
            if slot.key in merged:
                known = merged[slot.key]
                types = tuple(dict.fromkeys(known.payload_types + slot.payload_types))
                slot = ReportSlot(slot.key, slot.first, slot.last, slot.due_at, types)
            merged[slot.key] = slot
    return sorted(merged.values(), key=lambda s: (s.due_at, s.first))
