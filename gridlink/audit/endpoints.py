"""/v1/audit: the audit log, newest first (auditors and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from gridlink.api.deps import DbSession, require
from gridlink.audit import service
from gridlink.audit.schemas import AuditEntryOut
from gridlink.auth.permissions import Permission
from gridlink.auth.principal import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]


@router.get("", response_model=list[AuditEntryOut])
def list_audit(
    session: DbSession,
    _principal: Auditor,
    entity: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    since: AwareDatetime | None = None,
    before_id: Annotated[int | None, Query(description="Page backwards from this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryOut]:
    entries = service.list_entries(
        session,
        entity=entity,
        entity_id=entity_id,
        action=action,
        since=since,
        limit=limit,
        before_id=before_id,
    )
    return [AuditEntryOut.model_validate(e) for e in entries]
