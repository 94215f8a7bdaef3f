"""/v1/nodes/{id}/telemetry (batches from nodes) and /v1/facility/power."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.api.types import ApiDatetime, Id
from gridlink.auth.permissions import Permission, ensure_own_node
from gridlink.auth.principal import Principal
from gridlink.budgets.hooks import recompute_and_publish
from gridlink.telemetry import service
from gridlink.telemetry.schemas import (
    FacilityPower,
    TelemetryAccepted,
    TelemetryBatch,
    TelemetryMinute,
)

router = APIRouter(tags=["telemetry"])

Writer = Annotated[Principal, Depends(require(Permission.TELEMETRY_WRITE))]
FacilityReader = Annotated[Principal, Depends(require(Permission.FACILITY_READ))]
Reader = Annotated[Principal, Depends(require(Permission.NODE_READ))]


@router.post(
    "/v1/nodes/{node_id}/telemetry",
    response_model=TelemetryAccepted,
    status_code=status.HTTP_201_CREATED,
)
def post_telemetry(
    node_id: Id,
    body: TelemetryBatch,
    request: Request,
    session: DbSession,
    principal: Writer,
    now: Now,
    settings: AppSettings,
) -> TelemetryAccepted:
    """A batch of samples (at most ``telemetry_max_batch``), inserted in one statement; all or
    nothing. Counts as a heartbeat; a node back from offline gets a budget recompute."""
    ensure_own_node(principal, node_id)
    accepted = service.ingest(
        session, node_id, body.samples, actor=principal, now=now, settings=settings
    )
    if accepted.node_came_back:
        reason = f"node {node_id} back online"
        recompute_and_publish(
            request, session, actor=principal, now=now, reason=reason, settings=settings
        )
    return accepted


@router.get("/v1/nodes/{node_id}/telemetry/history", response_model=list[TelemetryMinute])
def get_telemetry_history(
    node_id: Id,
    session: DbSession,
    principal: Reader,
    now: Now,
    since: Annotated[ApiDatetime | None, Query(description="Default: until - 1 h.")] = None,
    until: Annotated[ApiDatetime | None, Query(description="Default: now.")] = None,
) -> list[TelemetryMinute]:
    """The node's telemetry per minute over ``[since, until)`` (at most 7 days): averaged raw
    samples while they are kept, then the rollups that replace them."""
    ensure_own_node(principal, node_id)
    until = until or now
    since = since or until - timedelta(hours=1)
    return service.history(session, node_id, since=since, until=until)


@router.get("/v1/facility/power", response_model=FacilityPower)
def get_facility_power(
    session: DbSession, _principal: FacilityReader, now: Now, settings: AppSettings
) -> FacilityPower:
    """Current facility power: each node's latest sample (within node_stale_after_s) + overhead."""
    return service.facility_power(session, now=now, settings=settings)
