"""SQL for the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.models.audit import AuditEntry


def list_entries(
    session: Session,
    *,
    entity: str | None,
    entity_id: str | None,
    action: str | None,
    since: datetime | None,
    limit: int,
    before_id: int | None,
) -> list[AuditEntry]:
    """Newest first; ``before_id`` pages backwards."""
    stmt = select(AuditEntry)
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))
