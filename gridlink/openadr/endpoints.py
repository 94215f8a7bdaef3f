"""/v1/openadr: the webhook the VTN calls (echo challenge and notifications) and the VEN's view
of the events it has seen.

Notifications are authenticated with the bearer token the VEN gave the VTN in its subscription
(``GRIDLINK_OPENADR_WEBHOOK_TOKEN``), not with a gridlink API token. A notification about an
event runs the same ingestion as a poll; polling stays the safety net.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.auth.permissions import Permission
from gridlink.auth.principal import Principal
from gridlink.budgets.hooks import recompute_and_publish
from gridlink.errors import AuthenticationError, InvalidInputError, NotFoundError
from gridlink.openadr import registration, service
from gridlink.openadr.schema import object_errors

router = APIRouter(prefix="/v1/openadr", tags=["openadr"])
log = logging.getLogger(__name__)

Reader = Annotated[Principal, Depends(require(Permission.CURTAILMENTS_READ))]


class NotificationAccepted(BaseModel):
    object_type: str
    operation: str
    object_id: str | None
    changed: bool


class OpenAdrEventOut(BaseModel):
    vtn_event_id: str
    program_id: str | None
    state: str
    reason: str | None
    event_id: int | None
    ignored_payload_types: list[str]
    first_seen_at: datetime
    last_seen_at: datetime
    reports_posted: list[dict[str, Any]]


def _check_token(request: Request, expected: str | None) -> None:
    if expected is None:
        raise NotFoundError("webhook", "(GRIDLINK_OPENADR_WEBHOOK_TOKEN is not set)")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        raise AuthenticationError("notification without the subscription's bearer token")


_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
_WEBHOOK_ERRORS: dict[int | str, dict[str, Any]] = {  # JSON errors, also on the plain-text echo
    401: {"content": _ERROR_JSON, "description": "No or a wrong subscription bearer token."},
    404: {"content": _ERROR_JSON, "description": "The webhook is off (no webhook token set)."},
}


@router.get("/notifications", response_class=PlainTextResponse, responses=_WEBHOOK_ERRORS)
@router.get("/notifications/echo", response_class=PlainTextResponse, include_in_schema=False)
def echo(settings: AppSettings, echo: Annotated[str, Query(max_length=4096)]) -> str:
    """The VTN's callback check: answer 200 with the ``echo`` value as the body."""
    if settings.openadr_webhook_token is None:
        raise NotFoundError("webhook", "(GRIDLINK_OPENADR_WEBHOOK_TOKEN is not set)")
    return echo


@router.post("/notifications", response_model=NotificationAccepted, responses=_WEBHOOK_ERRORS)
def notification(
    body: Annotated[dict[str, Any], Body()],
    request: Request,
    session: DbSession,
    now: Now,
    settings: AppSettings,
) -> NotificationAccepted:
    """A VTN notification (bearer token of the subscription); events are ingested at once."""
    token = settings.openadr_webhook_token
    _check_token(request, None if token is None else token.get_secret_value())
    errors = object_errors("notification", body)
    if errors:
        raise InvalidInputError("body", f"not an OpenADR 3.1 notification: {errors[0]}")
    obj = body["object"]
    object_type, operation = body["objectType"], body["operation"]
    changed = False
    if object_type == "EVENT":
        if operation == "DELETE":
            changed = service.delete_vtn_event(session, obj["id"], now=now)
        else:
            targets = service.our_targets(settings, registration.resource_names(session, settings))
            changed = service.ingest_vtn_event(
                session, obj, now=now, settings=settings, targets=targets
            )
    if changed:
        recompute_and_publish(
            request,
            session,
            actor=service.OPENADR,
            now=now,
            reason=f"OpenADR notification: {operation} event {obj.get('id')}",
            settings=settings,
        )
    return NotificationAccepted(
        object_type=object_type, operation=operation, object_id=obj.get("id"), changed=changed
    )


@router.get("/events", response_model=list[OpenAdrEventOut])
def list_events(
    session: DbSession,
    _principal: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[OpenAdrEventOut]:
    """Every VTN event the VEN has seen, newest first, with what became of it."""
    return [
        OpenAdrEventOut(
            vtn_event_id=r.vtn_event_id,
            program_id=r.program_id,
            state=r.state.value,
            reason=r.reason,
            event_id=r.event_id,
            ignored_payload_types=r.ignored_payload_types,
            first_seen_at=r.first_seen_at,
            last_seen_at=r.last_seen_at,
            reports_posted=r.reports_posted,
        )
        for r in service.list_records(session, limit=limit, offset=offset)
    ]
