"""SQL for the audit log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.audit.schemas import AuditQuery
from gridlink.models.audit import AuditEntry


def list_entries(session: Session, query: AuditQuery) -> list[AuditEntry]:
    """Newest first; ``before_id`` pages backwards."""
    stmt = select(AuditEntry)
    if query.entity is not None:
        stmt = stmt.where(AuditEntry.entity == query.entity)
    if query.entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == query.entity_id)
    if query.action is not None:
        stmt = stmt.where(AuditEntry.action == query.action)
    if query.since is not None:
        stmt = stmt.where(AuditEntry.at >= query.since)
    if query.before_id is not None:
        stmt = stmt.where(AuditEntry.id < query.before_id)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(query.limit)))
