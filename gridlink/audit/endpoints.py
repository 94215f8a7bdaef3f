"""/v1/audit: the audit log, newest first (auditors and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gridlink.api.deps import DbSession, require
from gridlink.api.types import ApiDatetime, BigBeforeId, SafeText
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
    entity: Annotated[SafeText | None, Query(max_length=64)] = None,
    entity_id: Annotated[SafeText | None, Query(max_length=64)] = None,
    action: Annotated[SafeText | None, Query(max_length=64)] = None,
    since: Annotated[ApiDatetime | None, Query()] = None,
    before_id: BigBeforeId = None,
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
