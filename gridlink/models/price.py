"""Interval prices as received, each with the limit the price policy made of it.

``(source, series_id, start_at)`` is one price: re-posting a series updates its rows. ``event_id``
is the gridlink event (source ``price``) that carries the limit into the planner, so the timeline
can say which price made which limit; ``rule`` is the policy's explanation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base, utcnow


class PricePoint(Base):
    __tablename__ = "price_points"
    __table_args__ = (
        UniqueConstraint("source", "series_id", "start_at"),
        Index("ix_price_points_start_at", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    series_id: Mapped[str] = mapped_column(String(200))
    start_at: Mapped[datetime]
    duration_s: Mapped[float]
    price: Mapped[float]
    currency: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str] = mapped_column(String(16))
    price_per_kwh: Mapped[float]
    limit_kw: Mapped[float | None]
    rule: Mapped[str | None] = mapped_column(String(256))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
