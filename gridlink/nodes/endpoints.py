"""/v1/nodes: registration and heartbeat (idempotent by name), listing and node status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session

from gridlink.api.deps import AppSettings, DbSession, Now, require
from gridlink.api.types import Id
from gridlink.auth.permissions import Permission, ensure_own_node
from gridlink.auth.principal import Principal
from gridlink.budgets import repository as budgets_repository
from gridlink.budgets import service as budgets_service
from gridlink.budgets.hooks import recompute_and_publish
from gridlink.errors import PermissionDeniedError
from gridlink.models.auth import Role
from gridlink.models.node import Node
from gridlink.models.telemetry import TelemetrySample
from gridlink.nodes import repository, service
from gridlink.nodes.schemas import NodeOut, NodeRegister
from gridlink.settings import GridlinkSettings
from gridlink.telemetry import repository as telemetry_repository

router = APIRouter(prefix="/v1/nodes", tags=["nodes"])

Lister = Annotated[Principal, Depends(require(Permission.NODES_LIST))]
Registrar = Annotated[Principal, Depends(require(Permission.NODE_REGISTER))]
NodeReader = Annotated[Principal, Depends(require(Permission.NODE_READ))]


@dataclass(frozen=True)
class Prefetched:
    latest: TelemetrySample | None
    version_id: int | None
    power_w: float | None


def describe(
    session: Session,
    node: Node,
    *,
    now: datetime,
    settings: GridlinkSettings,
    prefetched: Prefetched | None = None,
) -> NodeOut:
    """The node as the API shows it. ``prefetched`` carries the latest sample and the
    allocation (version id, power now) when the caller fetched them for many nodes at once."""
    if prefetched is None:
        trajectory = budgets_service.node_trajectory(session, node.id, now=now)
        prefetched = Prefetched(
            latest=telemetry_repository.latest_for_node(session, node.id),
            version_id=trajectory.version_id,
            power_w=trajectory.power_at(now),
        )
    latest = prefetched.latest
    return NodeOut(
        id=node.id,
        name=node.name,
        gpu_type=node.gpu_type,
        gpu_count=node.gpu_count,
        gpu_min_cap_w=node.gpu_min_cap_w,
        gpu_max_cap_w=node.gpu_max_cap_w,
        idle_power_w=node.idle_power_w,
        min_power_w=node.min_power_w,
        max_power_w=node.max_power_w,
        flexibility_tier=node.flexibility_tier,
        curve=[(p, t) for p, t in node.curve],
        status=service.status_at(node, now, settings),
        last_seen_at=node.last_seen_at,
        latest_power_w=None if latest is None else latest.power_w,
        latest_sample_at=None if latest is None else latest.ts,
        current_allocation_w=prefetched.power_w,
        budget_version_id=prefetched.version_id,
    )


@router.post(
    "",
    response_model=NodeOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "Known name: heartbeat / spec update."}},
)
def register_node(
    body: NodeRegister,
    request: Request,
    response: Response,
    session: DbSession,
    principal: Registrar,
    now: Now,
    settings: AppSettings,
) -> NodeOut:
    """Register a node (201) or refresh it by name (200). A node token may only refresh its own
    node, reporting its inventory and curve but not its ``flexibility_tier`` (admins set it);
    registering new nodes takes an admin token."""
    if principal.role == Role.NODE:
        own = repository.get(session, principal.node_id) if principal.node_id else None
        if own is None or own.name != body.name:
            raise PermissionDeniedError(
                f"this node token is bound to node {principal.node_id}, not to {body.name!r}"
            )
        body = service.check_self_report(body, own)
    node, created, inputs_changed = service.register_node(
        session, body, actor=principal, now=now, settings=settings
    )
    if inputs_changed:
        verb = "registered" if created else "updated"
        reason = f"node {node.id} ({node.name}) {verb}"
        recompute_and_publish(
            request, session, actor=principal, now=now, reason=reason, settings=settings
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return describe(session, node, now=now, settings=settings)


@router.get("", response_model=list[NodeOut])
def list_nodes(
    session: DbSession, _principal: Lister, now: Now, settings: AppSettings
) -> list[NodeOut]:
    """Every node, with its latest sample (if within node_offline_after_s) and its allocation
    now; three queries whatever the fleet size."""
    since = now - timedelta(seconds=settings.node_offline_after_s)
    latest = {
        s.node_id: s for s in telemetry_repository.latest_per_node(session, since=since, until=now)
    }
    version = budgets_repository.latest_version(session)
    powers = {} if version is None else budgets_repository.allocations_at(session, version.id, now)
    version_id = None if version is None else version.id
    return [
        describe(
            session,
            node,
            now=now,
            settings=settings,
            prefetched=Prefetched(latest.get(node.id), version_id, powers.get(node.id)),
        )
        for node in service.list_nodes(session)
    ]


@router.get("/{node_id}", response_model=NodeOut)
def get_node(
    node_id: Id, session: DbSession, principal: NodeReader, now: Now, settings: AppSettings
) -> NodeOut:
    """Status (from last contact), latest power and the allocation in force now."""
    ensure_own_node(principal, node_id)
    node = service.get_node(session, node_id)
    return describe(session, node, now=now, settings=settings)
