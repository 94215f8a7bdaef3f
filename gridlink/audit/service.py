"""Recording and reading audit entries. Callers pass JSON-ready dicts for before/after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gridlink.audit import repository
from gridlink.audit.schemas import AuditQuery
from gridlink.auth.principal import Principal
from gridlink.models.audit import AuditEntry


def record(
    session: Session,
    actor: Principal,
    action: str,
    entity: str,
    entity_id: object,
    *,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=at,
        actor_token_id=actor.token_id,
        actor_role=actor.role,
        actor_name=actor.name,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def list_entries(session: Session, query: AuditQuery) -> list[AuditEntry]:
    return repository.list_entries(session, query)
