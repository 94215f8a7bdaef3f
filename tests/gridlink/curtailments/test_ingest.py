"""ingest_event: the path every source (manual, OpenADR, price) takes into the database."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.auth.principal import SYSTEM
from gridlink.curtailments.ingest import EventSpec, IngestOutcome, IntervalSpec, ingest_event
from gridlink.models.event import Event, EventSource, SignalKind
from gridlink.settings import GridlinkSettings

START = datetime(2026, 8, 3, 17, tzinfo=UTC)


def spec(*values: float, priority: int = 1) -> EventSpec:
    return EventSpec(
        source=EventSource.OPENADR,
        external_id="ven-7/event-1",
        priority=priority,
        intervals=tuple(
            IntervalSpec(START.replace(hour=17 + i), 3600.0, SignalKind.REDUCTION_KW, v)
            for i, v in enumerate(values)
        ),
    )


def test_openadr_event_versions(db_session: Session, database_url: str) -> None:
    settings = GridlinkSettings(database_url=database_url)
    kw = {"actor": SYSTEM, "now": START, "settings": settings}
    first = ingest_event(db_session, spec(50, 80), **kw)
    assert first.outcome is IngestOutcome.CREATED
    # Same content, intervals in another order: the same event.
    again = ingest_event(
        db_session,
        EventSpec(
            source=EventSource.OPENADR,
            external_id="ven-7/event-1",
            priority=1,
            intervals=tuple(reversed(spec(50, 80).intervals)),
        ),
        **kw,
    )
    assert again.outcome is IngestOutcome.UNCHANGED and again.event.id == first.event.id
    changed = ingest_event(db_session, spec(50, 90), **kw)
    assert changed.outcome is IngestOutcome.NEW_VERSION and changed.event.version == 2
    reprioritised = ingest_event(db_session, spec(50, 90, priority=3), **kw)
    assert reprioritised.event.version == 3

    rows = db_session.scalars(
        select(Event).where(Event.external_id == "ven-7/event-1").order_by(Event.version)
    ).all()
    assert [(e.version, e.is_current) for e in rows] == [(1, False), (2, False), (3, True)]
    assert [e.superseded_by_id for e in rows] == [rows[1].id, rows[2].id, None]
    assert [i.value for i in rows[2].intervals] == [50, 90]
    assert all(i.units == "kW" for i in rows[2].intervals)
