"""/v1/audit: the audit log, newest first (auditors and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gridlink.api.deps import DbSession, require
from gridlink.audit import service
from gridlink.audit.schemas import AuditEntryOut, AuditQuery
from gridlink.auth.permissions import Permission
from gridlink.auth.principal import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]


@router.get("", response_model=list[AuditEntryOut])
def list_audit(
    session: DbSession, _principal: Auditor, query: Annotated[AuditQuery, Query()]
) -> list[AuditEntryOut]:
    return [AuditEntryOut.model_validate(e) for e in service.list_entries(session, query)]
