"""/v1/nodes/{id}/telemetry (batches from nodes) and /v1/facility/power."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.api.types import Id
from gridlink.auth.permissions import Permission, ensure_own_node
from gridlink.auth.principal import Principal
from gridlink.budgets.hooks import recompute_and_publish
from gridlink.telemetry import service
from gridlink.telemetry.schemas import FacilityPower, TelemetryAccepted, TelemetryBatch

router = APIRouter(tags=["telemetry"])

Writer = Annotated[Principal, Depends(require(Permission.TELEMETRY_WRITE))]
FacilityReader = Annotated[Principal, Depends(require(Permission.FACILITY_READ))]


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


@router.get("/v1/facility/power", response_model=FacilityPower)
def get_facility_power(
    session: DbSession, _principal: FacilityReader, now: Now, settings: AppSettings
) -> FacilityPower:
    """Current facility power: each node's latest sample (within node_stale_after_s) + overhead."""
    return service.facility_power(session, now=now, settings=settings)
