"""SQL for events and their intervals."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gridlink.curtailments.schemas import MAX_DURATION_S
from gridlink.models.event import Event, EventInterval, EventSource, EventStatus


def get(session: Session, event_id: int) -> Event | None:
    return session.get(Event, event_id)


def current_version(session: Session, source: EventSource, external_id: str) -> Event | None:
    stmt = (
        select(Event)
        .where(Event.source == source, Event.external_id == external_id, Event.is_current)
        .with_for_update()
    )
    return session.scalars(stmt).first()


def key_owner(session: Session, source: EventSource, external_id: str) -> str | None:
    """Who stored the first version under ``external_id`` (None if nobody has)."""
    stmt = select(Event.created_by).where(
        Event.source == source, Event.external_id == external_id, Event.version == 1
    )
    return session.scalars(stmt).first()


def list_events(
    session: Session,
    *,
    source: EventSource | None,
    include_superseded: bool,
    limit: int,
    offset: int,
) -> list[Event]:
    stmt = select(Event).options(selectinload(Event.intervals))
    if source is not None:
        stmt = stmt.where(Event.source == source)
    if not include_superseded:
        stmt = stmt.where(Event.is_current)
    return list(session.scalars(stmt.order_by(Event.id.desc()).limit(limit).offset(offset)))


def planning_events(session: Session, *, start: datetime, end: datetime) -> list[Event]:
    """Current, non-cancelled events with an interval overlapping ``[start, end)``.

    Interval ends are not stored, so the SQL filter looks back the longest allowed interval and
    callers clip exactly; events come back with all their intervals, in id order.
    """
    overlapping = (
        select(EventInterval.event_id)
        .where(
            EventInterval.start_at < end,
            EventInterval.start_at > start - timedelta(seconds=MAX_DURATION_S),
        )
        .distinct()
    )
    stmt = (
        select(Event)
        .options(selectinload(Event.intervals))
        .where(Event.is_current, Event.status != EventStatus.CANCELLED, Event.id.in_(overlapping))
        .order_by(Event.id)
    )
    return list(session.scalars(stmt))


def boundary_intervals(
    session: Session, *, after: datetime, until: datetime
) -> list[EventInterval]:
    """Intervals of current, non-cancelled events that start or end in ``(after, until]``."""
    stmt = (
        select(EventInterval)
        .join(Event)
        .where(
            Event.is_current,
            Event.status != EventStatus.CANCELLED,
            EventInterval.start_at <= until,
            EventInterval.start_at > after - timedelta(seconds=MAX_DURATION_S),
        )
    )
    return list(session.scalars(stmt))


def not_cancelled(session: Session) -> list[Event]:
    stmt = (
        select(Event)
        .options(selectinload(Event.intervals))
        .where(Event.status.in_([EventStatus.SCHEDULED, EventStatus.ACTIVE]))
    )
    return list(session.scalars(stmt))
