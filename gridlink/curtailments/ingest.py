"""Idempotent event ingestion: the one path every signal (manual, OpenADR, price) takes into the
database. Never commits.

The same ``(source, external_id)`` with the same content is one record; changed content is a new
version that supersedes the previous one (kept, with ``is_current = False`` and
``superseded_by_id``), so the history of what the gateway was told stays readable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gridlink.audit import service as audit
from gridlink.auth.principal import Principal
from gridlink.curtailments import repository
from gridlink.errors import InvalidInputError
from gridlink.models.event import Event, EventInterval, EventSource, EventStatus, SignalKind
from gridlink.settings import GridlinkSettings

UNITS = {SignalKind.LIMIT_KW: "kW", SignalKind.REDUCTION_KW: "kW", SignalKind.REDUCTION_PCT: "%"}


@dataclass(frozen=True)
class IntervalSpec:
    start: datetime
    duration_s: float
    kind: SignalKind
    value: float
    node_id: int | None = None  # set: limits this node only (its maximum), not the facility

    @property
    def units(self) -> str:
        return UNITS[self.kind]


@dataclass(frozen=True)
class EventSpec:
    """A signal as received, before it is stored (the OpenADR and price adapters build these)."""

    source: EventSource
    external_id: str
    priority: int
    intervals: tuple[IntervalSpec, ...]
    name: str | None = None
    recurrence: dict[str, Any] | None = None


class IngestOutcome(enum.StrEnum):
    CREATED = "created"
    NEW_VERSION = "new_version"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class IngestResult:
    event: Event
    outcome: IngestOutcome

    @property
    def changed(self) -> bool:
        return self.outcome is not IngestOutcome.UNCHANGED


def _fingerprint_intervals(
    intervals: list[tuple[datetime, float, str, float, int | None]],
) -> list[Any]:
    return sorted(
        (s.isoformat(), round(d, 6), k, round(v, 9), n or 0) for s, d, k, v, n in intervals
    )


def _spec_fingerprint(spec: EventSpec) -> tuple[Any, ...]:
    return (
        spec.priority,
        spec.name,
        spec.recurrence,
        _fingerprint_intervals(
            [(i.start, i.duration_s, i.kind.value, i.value, i.node_id) for i in spec.intervals]
        ),
    )


def _event_fingerprint(event: Event) -> tuple[Any, ...]:
    return (
        event.priority,
        event.name,
        event.recurrence,
        _fingerprint_intervals(
            [
                (i.start_at, i.duration_s, i.signal_kind.value, i.value, i.node_id)
                for i in event.intervals
            ]
        ),
    )


def snapshot(event: Event) -> dict[str, Any]:
    """The event as JSON for the audit log."""
    return {
        "id": event.id,
        "source": event.source.value,
        "external_id": event.external_id,
        "version": event.version,
        "status": event.status.value,
        "priority": event.priority,
        "name": event.name,
        "recurrence": event.recurrence,
        "is_current": event.is_current,
        "superseded_by_id": event.superseded_by_id,
        "intervals": [
            {
                "start": i.start_at.isoformat(),
                "duration_s": i.duration_s,
                "kind": i.signal_kind.value,
                "value": i.value,
                "units": i.units,
                **({"node_id": i.node_id} if i.node_id is not None else {}),
            }
            for i in event.intervals
        ],
    }


def _check_limits(spec: EventSpec, settings: GridlinkSettings) -> None:
    ceiling_kw = settings.max_limit_factor * settings.facility_max_kw
    for interval in spec.intervals:
        if interval.kind is SignalKind.REDUCTION_PCT:
            if not 0 < interval.value <= 100:
                raise InvalidInputError(
                    interval.kind.value, f"must be in (0, 100], got {interval.value}"
                )
        elif not 0 < interval.value <= ceiling_kw:
            raise InvalidInputError(
                interval.kind.value,
                f"must be in (0, {ceiling_kw:g}] kW ({settings.max_limit_factor:g} x "
                f"facility_max_kw), got {interval.value:g}",
            )


def ingest_event(
    session: Session,
    spec: EventSpec,
    *,
    actor: Principal,
    now: datetime,
    settings: GridlinkSettings,
) -> IngestResult:
    """Store ``spec`` idempotently (see the module docstring)."""
    if not spec.intervals:
        raise InvalidInputError("intervals", "an event needs at least one interval")
    _check_limits(spec, settings)
    current = repository.current_version(session, spec.source, spec.external_id)
    if current is not None and _event_fingerprint(current) == _spec_fingerprint(spec):
        return IngestResult(current, IngestOutcome.UNCHANGED)

    event = Event(
        source=spec.source,
        external_id=spec.external_id,
        version=1 if current is None else current.version + 1,
        status=EventStatus.SCHEDULED,
        priority=spec.priority,
        name=spec.name,
        recurrence=spec.recurrence,
        is_current=True,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
        intervals=[
            EventInterval(
                start_at=i.start,
                duration_s=i.duration_s,
                signal_kind=i.kind,
                value=i.value,
                units=i.units,
                node_id=i.node_id,
            )
            for i in sorted(spec.intervals, key=lambda i: i.start)
        ],
    )
    before = None
    if current is not None:
        before = snapshot(current)
        current.is_current = False
        session.flush()  # the partial "one current version" state must never be visible twice
    session.add(event)
    session.flush()
    if current is not None:
        current.superseded_by_id = event.id
        current.updated_at = now
        session.flush()
    audit.record(
        session,
        actor,
        "event.create" if current is None else "event.supersede",
        "event",
        event.id,
        before=before,
        after=snapshot(event),
        at=now,
    )
    outcome = IngestOutcome.CREATED if current is None else IngestOutcome.NEW_VERSION
    return IngestResult(event, outcome)


def cancel_current(
    session: Session,
    source: EventSource,
    external_id: str,
    *,
    actor: Principal,
    now: datetime,
    action: str,
) -> Event | None:
    """Cancel the current version of ``(source, external_id)`` (the record stays); returns it,
    or None when there is none or it is already cancelled. Used by the OpenADR and price
    adapters when a signal is withdrawn."""
    event = repository.current_version(session, source, external_id)
    if event is None or event.status is EventStatus.CANCELLED:
        return None
    before = snapshot(event)
    event.status, event.cancelled_at, event.updated_at = EventStatus.CANCELLED, now, now
    session.flush()
    audit.record(
        session, actor, action, "event", event.id, before=before, after=snapshot(event), at=now
    )
    return event
