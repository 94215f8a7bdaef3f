"""/v1/curtailments: managers create, list, read, change and cancel curtailments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.api.types import Id, Offset
from gridlink.auth.permissions import Permission
from gridlink.auth.principal import Principal
from gridlink.budgets.hooks import recompute_and_publish
from gridlink.curtailments import advice, service
from gridlink.curtailments.schemas import CurtailmentCreate, CurtailmentOut, CurtailmentUpdate

router = APIRouter(prefix="/v1/curtailments", tags=["curtailments"])

Reader = Annotated[Principal, Depends(require(Permission.CURTAILMENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.CURTAILMENTS_WRITE))]


@router.post(
    "",
    response_model=CurtailmentOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Same external_id and content: the stored curtailment."}},
)
def create_curtailment(
    body: CurtailmentCreate,
    request: Request,
    response: Response,
    session: DbSession,
    principal: Writer,
    now: Now,
    settings: AppSettings,
) -> CurtailmentOut:
    """Schedule a curtailment (201), or repost one idempotently by ``external_id`` (200 when
    unchanged; 201 with a new version when changed)."""
    result = service.create_curtailment(session, body, actor=principal, now=now, settings=settings)
    if result.changed:
        reason = f"curtailment {result.event.id} {result.outcome}"
        recompute_and_publish(
            request, session, actor=principal, now=now, reason=reason, settings=settings
        )
    else:
        response.status_code = status.HTTP_200_OK
    return advice.with_warnings(
        session, service.to_out(result.event, now), now=now, settings=settings
    )


@router.get("", response_model=list[CurtailmentOut])
def list_curtailments(
    session: DbSession,
    _principal: Reader,
    now: Now,
    include_superseded: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[CurtailmentOut]:
    """Newest first; superseded versions only with ``include_superseded=true``."""
    events = service.list_curtailments(
        session, include_superseded=include_superseded, limit=limit, offset=offset
    )
    return [service.to_out(e, now) for e in events]


@router.get("/{curtailment_id}", response_model=CurtailmentOut)
def get_curtailment(
    curtailment_id: Id, session: DbSession, _principal: Reader, now: Now
) -> CurtailmentOut:
    return service.to_out(service.get_curtailment(session, curtailment_id), now)


@router.patch("/{curtailment_id}", response_model=CurtailmentOut)
def update_curtailment(
    curtailment_id: Id,
    body: CurtailmentUpdate,
    request: Request,
    session: DbSession,
    principal: Writer,
    now: Now,
    settings: AppSettings,
) -> CurtailmentOut:
    """Change a curtailment: stored as a new version (a new id) superseding this one. 409 when
    this version is superseded or cancelled."""
    result = service.update_curtailment(
        session, curtailment_id, body, actor=principal, now=now, settings=settings
    )
    if result.changed:
        reason = f"curtailment {curtailment_id} updated (now {result.event.id})"
        recompute_and_publish(
            request, session, actor=principal, now=now, reason=reason, settings=settings
        )
    return advice.with_warnings(
        session, service.to_out(result.event, now), now=now, settings=settings
    )


@router.delete("/{curtailment_id}", response_model=CurtailmentOut)
def cancel_curtailment(
    curtailment_id: Id,
    request: Request,
    session: DbSession,
    principal: Writer,
    now: Now,
    settings: AppSettings,
) -> CurtailmentOut:
    """Cancel: the record stays, with status ``cancelled``. Cancelling twice is harmless."""
    event, changed = service.cancel_curtailment(session, curtailment_id, actor=principal, now=now)
    if changed:
        reason = f"curtailment {curtailment_id} cancelled"
        recompute_and_publish(
            request, session, actor=principal, now=now, reason=reason, settings=settings
        )
    return service.to_out(event, now)
