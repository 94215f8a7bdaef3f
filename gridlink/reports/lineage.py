"""What an event lineage asked for, version by version, and how it is described in a report.

A version is in force from its creation (the first one: from the start) until the next version
was created; a cancelled version only until its cancellation. So a change announced mid-event
applies from then on, and an event cancelled midway asked for nothing afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gridlink.models.event import Event, EventStatus
from gridlink.reports.inputs import Requested


def event_key(event: Event) -> str:
    return f"{event.source.value}:{event.external_id}"


def _in_force(versions: list[Event], k: int) -> tuple[datetime | None, datetime | None]:
    version = versions[k]
    start = None if k == 0 else version.created_at
    end = versions[k + 1].created_at if k + 1 < len(versions) else None
    if version.status is EventStatus.CANCELLED and version.cancelled_at is not None:
        end = version.cancelled_at if end is None else min(end, version.cancelled_at)
    return start, end


def requested_segments(versions: list[Event]) -> list[Requested]:
    """Each version's intervals clipped to the time that version was in force, oldest first."""
    ordered = sorted(versions, key=lambda v: v.version)
    segments = []
    for k, version in enumerate(ordered):
        valid_from, valid_to = _in_force(ordered, k)
        for interval in version.intervals:
            start = interval.start_at
            end = start + timedelta(seconds=interval.duration_s)
            if valid_from is not None:
                start = max(start, valid_from)
            if valid_to is not None:
                end = min(end, valid_to)
            if end > start:
                segments.append(
                    Requested(start, end, interval.signal_kind.value, interval.value, version.id)
                )
    return sorted(segments, key=lambda s: (s.start, s.event_id))


def describe(versions: list[Event]) -> dict[str, Any]:
    """The lineage as the report shows it: the same whichever version was asked for, and no
    mutable bookkeeping like ``updated_at`` (the body must be a function of the inputs)."""
    ordered = sorted(versions, key=lambda v: v.version)
    last = ordered[-1]
    return {
        "key": event_key(last),
        "source": last.source.value,
        "external_id": last.external_id,
        "name": last.name,
        "status": last.status.value,
        "cancelled_at": None if last.cancelled_at is None else last.cancelled_at.isoformat(),
        "versions": [
            {
                "id": v.id,
                "version": v.version,
                "status": v.status.value,
                "priority": v.priority,
                "created_at": v.created_at.isoformat(),
                "intervals": [
                    {
                        "start": i.start_at.isoformat(),
                        "end": (i.start_at + timedelta(seconds=i.duration_s)).isoformat(),
                        "kind": i.signal_kind.value,
                        "value": i.value,
                    }
                    for i in v.intervals
                ],
            }
            for v in ordered
        ],
    }


def overlaps(event: Event, start: datetime, end: datetime) -> bool:
    """Any interval of ``event`` overlapping ``[start, end)`` (cancellation ignored)."""
    return any(
        i.start_at < end and i.start_at + timedelta(seconds=i.duration_s) > start
        for i in event.intervals
    )
