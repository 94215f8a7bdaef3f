"""Curtailments: facility managers' events, stored through :mod:`gridlink.curtailments.ingest`.
Never commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from gridlink.audit import service as audit
from gridlink.auth.principal import Principal
from gridlink.curtailments import repository
from gridlink.curtailments.ingest import (
    EventSpec,
    IngestResult,
    IntervalSpec,
    ingest_event,
    snapshot,
)
from gridlink.curtailments.recurrence import occurrences
from gridlink.curtailments.schemas import (
    SIGNAL_FIELDS,
    CurtailmentCreate,
    CurtailmentOut,
    CurtailmentUpdate,
    IntervalOut,
    Recurrence,
)
from gridlink.errors import ConflictError, InvalidInputError, NotFoundError
from gridlink.models.event import Event, EventSource, EventStatus, SignalKind
from gridlink.settings import GridlinkSettings


def _spec_from_create(
    data: CurtailmentCreate, external_id: str, settings: GridlinkSettings
) -> EventSpec:
    kind, value = data.signal
    duration_s = data.occurrence_duration_s
    starts = occurrences(data.start, data.recurrence, limit=settings.max_recurrence_occurrences)
    if len(starts) > settings.max_recurrence_occurrences:
        raise InvalidInputError(
            "recurrence",
            f"expands to more than {settings.max_recurrence_occurrences} occurrences",
        )
    if not starts:
        raise InvalidInputError("recurrence", "has no occurrence on or after start")
    return EventSpec(
        source=EventSource.MANUAL,
        external_id=external_id,
        priority=data.priority,
        name=data.name,
        recurrence=None if data.recurrence is None else data.recurrence.model_dump(mode="json"),
        intervals=tuple(IntervalSpec(s, duration_s, kind, value) for s in starts),
    )


# A curtailment that ended longer ago than this is refused: it cannot change any budget.
PAST_TOLERANCE = timedelta(hours=1)


def _not_past(spec: EventSpec, now: datetime) -> None:
    end = max(i.start + timedelta(seconds=i.duration_s) for i in spec.intervals)
    if end < now - PAST_TOLERANCE:
        raise InvalidInputError(
            "start",
            f"the curtailment ended at {end.isoformat()}, more than "
            f"{PAST_TOLERANCE.total_seconds():.0f} s before now ({now.isoformat()})",
        )


def _owned_key(session: Session, external_id: str, actor: Principal) -> None:
    """An ``external_id`` belongs to the principal that first used it: another principal
    reusing it gets 409 instead of superseding (or reading) someone else's curtailment."""
    owner = repository.key_owner(session, EventSource.MANUAL, external_id)
    if owner is not None and owner != actor.name:
        raise ConflictError(
            f"external_id {external_id!r} belongs to another principal's curtailment; "
            "use your own key, or change that curtailment by its id"
        )


def create_curtailment(
    session: Session,
    data: CurtailmentCreate,
    *,
    actor: Principal,
    now: datetime,
    settings: GridlinkSettings,
) -> IngestResult:
    external_id = data.external_id or f"manual-{uuid.uuid4().hex}"
    spec = _spec_from_create(data, external_id, settings)
    _not_past(spec, now)
    if data.external_id is not None:
        _owned_key(session, external_id, actor)
    return ingest_event(session, spec, actor=actor, now=now, settings=settings)


def get_curtailment(session: Session, event_id: int) -> Event:
    event = repository.get(session, event_id)
    if event is None or event.source is not EventSource.MANUAL:
        raise NotFoundError("curtailment", event_id)
    return event


def list_curtailments(
    session: Session, *, include_superseded: bool, limit: int, offset: int
) -> list[Event]:
    return repository.list_events(
        session,
        source=EventSource.MANUAL,
        include_superseded=include_superseded,
        limit=limit,
        offset=offset,
    )


def _editable(event: Event) -> None:
    if not event.is_current:
        raise ConflictError(
            f"curtailment {event.id} was superseded by {event.superseded_by_id}; "
            "change the current version"
        )
    if event.status is EventStatus.CANCELLED:
        raise ConflictError(f"curtailment {event.id} is cancelled")


def _as_create(event: Event) -> dict[str, Any]:
    first = event.intervals[0]
    return {
        "name": event.name,
        "external_id": event.external_id,
        "start": first.start_at,
        "duration_s": first.duration_s,
        first.signal_kind.value: first.value,
        "priority": event.priority,
        "recurrence": event.recurrence,
    }


def update_curtailment(
    session: Session,
    event_id: int,
    data: CurtailmentUpdate,
    *,
    actor: Principal,
    now: datetime,
    settings: GridlinkSettings,
) -> IngestResult:
    """Apply the given fields as a new version of the curtailment."""
    event = get_curtailment(session, event_id)
    _editable(event)
    merged = _as_create(event)
    patch = data.model_dump(exclude_unset=True)
    if any(f in patch for f in SIGNAL_FIELDS):
        for f in SIGNAL_FIELDS:
            merged.pop(f, None)
    if "end" in patch or "duration_s" in patch:
        merged.pop("duration_s", None)
        merged.pop("end", None)
    merged.update(patch)
    try:
        full = CurtailmentCreate.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInputError(field, first["msg"]) from err
    spec = _spec_from_create(full, event.external_id, settings)
    _not_past(spec, now)
    return ingest_event(session, spec, actor=actor, now=now, settings=settings)


def cancel_curtailment(
    session: Session, event_id: int, *, actor: Principal, now: datetime
) -> tuple[Event, bool]:
    """Cancel (keep the record). Returns ``(event, changed)``; cancelling twice is a no-op."""
    event = get_curtailment(session, event_id)
    if not event.is_current:
        raise ConflictError(
            f"curtailment {event.id} was superseded by {event.superseded_by_id}; "
            "cancel the current version"
        )
    if event.status is EventStatus.CANCELLED:
        return event, False
    before = snapshot(event)
    event.status = EventStatus.CANCELLED
    event.cancelled_at = now
    event.updated_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "curtailment.cancel",
        "event",
        event.id,
        before=before,
        after=snapshot(event),
        at=now,
    )
    return event, True


def effective_status(event: Event, now: datetime) -> EventStatus:
    if event.status is EventStatus.CANCELLED:
        return EventStatus.CANCELLED
    if not event.intervals:
        return event.status
    first = min(i.start_at for i in event.intervals)
    last = max(i.start_at + timedelta(seconds=i.duration_s) for i in event.intervals)
    if now < first:
        return EventStatus.SCHEDULED
    if now < last:
        return EventStatus.ACTIVE
    return EventStatus.COMPLETED


def refresh_statuses(session: Session, *, now: datetime) -> int:
    """Persist scheduled -> active -> completed transitions (the scheduler calls this);
    returns how many events changed."""
    changed = 0
    for event in repository.not_cancelled(session):
        status = effective_status(event, now)
        if status is not event.status:
            event.status = status
            changed += 1
    return changed


def to_out(event: Event, now: datetime) -> CurtailmentOut:
    first = event.intervals[0]
    return CurtailmentOut(
        id=event.id,
        source=event.source,
        external_id=event.external_id,
        version=event.version,
        is_current=event.is_current,
        superseded_by_id=event.superseded_by_id,
        name=event.name,
        status=effective_status(event, now),
        priority=event.priority,
        start=first.start_at,
        end=first.start_at + timedelta(seconds=first.duration_s),
        duration_s=first.duration_s,
        limit_kw=first.value if first.signal_kind is SignalKind.LIMIT_KW else None,
        reduction_kw=first.value if first.signal_kind is SignalKind.REDUCTION_KW else None,
        reduction_pct=first.value if first.signal_kind is SignalKind.REDUCTION_PCT else None,
        recurrence=None if event.recurrence is None else Recurrence(**event.recurrence),
        intervals=[
            IntervalOut(
                start=i.start_at,
                end=i.start_at + timedelta(seconds=i.duration_s),
                kind=i.signal_kind,
                value=i.value,
                units=i.units,
            )
            for i in event.intervals
        ],
        created_by=event.created_by,
        created_at=event.created_at,
        cancelled_at=event.cancelled_at,
    )
