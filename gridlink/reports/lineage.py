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


def _in_force_segments(versions: list[Event]) -> list[tuple[Requested, int | None]]:
    """Each version's intervals clipped to the time that version was in force, oldest first,
    with the node an interval limits (None: the whole facility)."""
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
                req = Requested(start, end, interval.signal_kind.value, interval.value, version.id)
                segments.append((req, interval.node_id))
    return sorted(segments, key=lambda s: (s[0].start, s[0].event_id))


def requested_segments(versions: list[Event]) -> list[Requested]:
    """What the lineage asked of the facility: its facility-wide intervals, each clipped to the
    time its version was in force, oldest first. An interval that limits one node (an OpenADR
    event targeted at a node resource) is not a facility request: compliance is judged against
    facility requests only, so it is left out here (it still spans the event: `event_window`)."""
    return [req for req, node_id in _in_force_segments(versions) if node_id is None]


def event_window(versions: list[Event]) -> tuple[datetime, datetime] | None:
    """From the first to the last moment any interval of the lineage was in force (facility or
    node intervals); None if nothing was ever in force (cancelled before it started)."""
    segments = [req for req, _ in _in_force_segments(versions)]
    if not segments:
        return None
    return min(r.start for r in segments), max(r.end for r in segments)


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
