"""Demand-response signals (manual curtailments, OpenADR events, prices) and their intervals."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridlink.db.base import Base, utcnow
from gridlink.models.types import str_enum


class EventSource(enum.StrEnum):
    MANUAL = "manual"
    OPENADR = "openadr"
    PRICE = "price"


class EventStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class SignalKind(enum.StrEnum):
    LIMIT_KW = "limit_kw"
    REDUCTION_KW = "reduction_kw"
    REDUCTION_PCT = "reduction_pct"


class Event(Base):
    """One version of a signal. Re-ingesting the same (source, external_id, version) is a no-op.

    A changed signal is stored as a new version; the previous one keeps its rows, gets
    ``is_current = False`` and points at its successor with ``superseded_by_id``, so the history
    of what the gateway was told stays readable. Only current, non-cancelled versions feed the
    planner.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "external_id", "version"),
        Index("ix_events_source_external_id_is_current", "source", "external_id", "is_current"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[EventSource] = mapped_column(str_enum(EventSource, "event_source"))
    external_id: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[EventStatus] = mapped_column(
        str_enum(EventStatus, "event_status"), default=EventStatus.SCHEDULED
    )
    priority: Mapped[int] = mapped_column(default=0)
    name: Mapped[str | None] = mapped_column(String(256))
    is_current: Mapped[bool] = mapped_column(default=True)
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL")
    )
    # The recurrence rule as given ({"freq", "count", "until", "timezone"}); the occurrences are
    # expanded into ``intervals`` when the version is stored.
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(128))
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    intervals: Mapped[list[EventInterval]] = relationship(
        back_populates="event",
        cascade="all, delete-orphan",
        order_by="EventInterval.start_at",
    )


class EventInterval(Base):
    __tablename__ = "event_intervals"
    __table_args__ = (CheckConstraint("duration_s > 0", name="duration_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    start_at: Mapped[datetime] = mapped_column(index=True)
    duration_s: Mapped[float]
    signal_kind: Mapped[SignalKind] = mapped_column(str_enum(SignalKind, "signal_kind"))
    value: Mapped[float]
    units: Mapped[str] = mapped_column(String(16))
    # Set: the interval limits this node only (its maximum power), not the facility; an
    # OpenADR event targeted at the node's resource (docs/openadr.md).
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), index=True, default=None
    )

    event: Mapped[Event] = relationship(back_populates="intervals")
