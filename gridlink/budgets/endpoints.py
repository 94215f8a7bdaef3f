"""/v1/timeline and /v1/nodes/{id}/allocation."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.api.types import ApiDatetime, BeforeId, Id
from gridlink.auth.permissions import Permission, ensure_own_node
from gridlink.auth.principal import Principal
from gridlink.budgets import service
from gridlink.budgets.schemas import (
    BudgetVersionOut,
    BudgetVersionSummary,
    NodeTrajectory,
    Timeline,
)

router = APIRouter(tags=["budgets"])

TimelineReader = Annotated[Principal, Depends(require(Permission.TIMELINE_READ))]
NodeReader = Annotated[Principal, Depends(require(Permission.NODE_READ))]


@router.get("/v1/timeline", response_model=Timeline)
def get_timeline(
    session: DbSession,
    _principal: TimelineReader,
    now: Now,
    settings: AppSettings,
    start: Annotated[ApiDatetime | None, Query(description="Default: now.")] = None,
    end: Annotated[ApiDatetime | None, Query(description="Default: start + horizon.")] = None,
) -> Timeline:
    """Facility limit, GPU budget and contributing events per segment over ``[start, end)``."""
    start = start or now
    end = end or start + timedelta(hours=settings.planning_horizon_h)
    return service.timeline(session, start=start, end=end, now=now, settings=settings)


@router.get("/v1/nodes/{node_id}/allocation", response_model=NodeTrajectory)
def get_allocation(
    node_id: Id, session: DbSession, principal: NodeReader, now: Now
) -> NodeTrajectory:
    """The node's allocation trajectory (W) from the latest budget version, from now on."""
    ensure_own_node(principal, node_id)
    return service.node_trajectory(session, node_id, now=now)


@router.get("/v1/budgets", response_model=list[BudgetVersionSummary])
def list_budget_versions(
    session: DbSession,
    _principal: TimelineReader,
    before_id: BeforeId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[BudgetVersionSummary]:
    """Stored budget versions, newest first, with the reason each was made."""
    return service.list_versions(session, limit=limit, before_id=before_id)


@router.get("/v1/budgets/{version_id}", response_model=BudgetVersionOut)
def get_budget_version(
    version_id: Id, session: DbSession, _principal: TimelineReader
) -> BudgetVersionOut:
    """One version with its inputs, facility segments and every node's allocation."""
    return service.get_version(session, version_id)
