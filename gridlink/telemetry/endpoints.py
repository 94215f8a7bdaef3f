"""/v1/nodes/{id}/telemetry (batches from nodes) and /v1/facility/power."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.auth.permissions import Permission, ensure_own_node
from gridlink.auth.principal import Principal
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
    node_id: int,
    body: TelemetryBatch,
    session: DbSession,
    principal: Writer,
    now: Now,
    settings: AppSettings,
) -> TelemetryAccepted:
    """A batch of samples (at most ``telemetry_max_batch``), inserted in one statement; all or
    nothing. Counts as a heartbeat."""
    ensure_own_node(principal, node_id)
    return service.ingest(
        session, node_id, body.samples, actor=principal, now=now, settings=settings
    )


@router.get("/v1/facility/power", response_model=FacilityPower)
def get_facility_power(
    session: DbSession, _principal: FacilityReader, now: Now, settings: AppSettings
) -> FacilityPower:
    """Current facility power: each node's latest sample (within node_stale_after_s) + overhead."""
    return service.facility_power(session, now=now, settings=settings)
