"""SQL for price points."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.models.price import PricePoint


def series(session: Session, source: str, series_id: str) -> dict[datetime, PricePoint]:
    stmt = select(PricePoint).where(PricePoint.source == source, PricePoint.series_id == series_id)
    return {p.start_at: p for p in session.scalars(stmt)}


def between(session: Session, *, start: datetime, end: datetime, limit: int) -> list[PricePoint]:
    stmt = (
        select(PricePoint)
        .where(PricePoint.start_at < end, PricePoint.start_at >= start)
        .order_by(PricePoint.start_at, PricePoint.source, PricePoint.series_id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
