"""Node registration, heartbeat and status. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gridlink.audit import service as audit
from gridlink.auth.principal import Principal
from gridlink.errors import NotFoundError, PermissionDeniedError
from gridlink.models.node import Node, NodeStatus
from gridlink.nodes import repository
from gridlink.nodes.schemas import NodeRegister
from gridlink.settings import GridlinkSettings

_SPEC_FIELDS = (
    "gpu_type",
    "gpu_count",
    "gpu_min_cap_w",
    "gpu_max_cap_w",
    "idle_power_w",
    "flexibility_tier",
    "min_power_w",
    "max_power_w",
    "curve",
    "stock_curve",
)


# What one serving node can physically have: a node token reporting more is refused (an admin
# may register anything the schema allows).
NODE_TOKEN_MAX_GPUS = 16
NODE_TOKEN_MAX_GPU_CAP_W = 1500.0
NODE_TOKEN_MAX_IDLE_W = 5000.0


def check_self_report(data: NodeRegister, own: Node) -> NodeRegister:
    """What a node token may say about its own node: its inventory and curve within physical
    bounds, never its priority tier (admins set ``flexibility_tier``). Returns the report with
    the stored tier; raises :class:`PermissionDeniedError` naming the field otherwise."""
    if (
        "flexibility_tier" in data.model_fields_set
        and data.flexibility_tier != own.flexibility_tier
    ):
        raise PermissionDeniedError(
            f"flexibility_tier: only an admin sets it (node {own.id} has tier "
            f"{own.flexibility_tier}); leave it out"
        )
    bounds = (
        ("gpu_count", data.gpu_count, NODE_TOKEN_MAX_GPUS),
        ("gpu_max_cap_w", data.gpu_max_cap_w, NODE_TOKEN_MAX_GPU_CAP_W),
        ("idle_power_w", data.idle_power_w, NODE_TOKEN_MAX_IDLE_W),
    )
    for field, value, limit in bounds:
        if value > limit:
            raise PermissionDeniedError(
                f"{field}: a node token may report at most {limit:g}, got {value:g} "
                "(an admin registers larger nodes)"
            )
    return data.model_copy(update={"flexibility_tier": own.flexibility_tier})


def status_at(node: Node, now: datetime, settings: GridlinkSettings) -> NodeStatus:
    """online while heard from within ``node_stale_after_s``, stale until
    ``node_offline_after_s``, then offline."""
    if node.last_seen_at is None:
        return NodeStatus.OFFLINE
    age_s = (now - node.last_seen_at).total_seconds()
    if age_s <= settings.node_stale_after_s:
        return NodeStatus.ONLINE
    if age_s <= settings.node_offline_after_s:
        return NodeStatus.STALE
    return NodeStatus.OFFLINE


def spec_snapshot(node: Node) -> dict[str, Any]:
    """The node's planning inputs as JSON (audit before/after)."""
    snapshot: dict[str, Any] = {"name": node.name}
    for field in _SPEC_FIELDS:
        value = getattr(node, field)
        snapshot[field] = [list(p) for p in value] if field == "curve" else value
    return snapshot


def get_node(session: Session, node_id: int) -> Node:
    node = repository.get(session, node_id)
    if node is None:
        raise NotFoundError("node", node_id)
    return node


def list_nodes(session: Session) -> list[Node]:
    return repository.list_all(session)


def register_node(
    session: Session,
    data: NodeRegister,
    *,
    actor: Principal,
    now: datetime,
    settings: GridlinkSettings,
) -> tuple[Node, bool, bool]:
    """Create the node named ``data.name`` or refresh it (heartbeat).

    Returns ``(node, created, inputs_changed)``: ``inputs_changed`` says whether anything the
    planner uses changed (spec, or the node coming back from offline), so the caller knows
    whether the budget needs recomputing.
    """
    wanted: dict[str, Any] = {
        "gpu_type": data.gpu_type,
        "gpu_count": data.gpu_count,
        "gpu_min_cap_w": data.gpu_min_cap_w,
        "gpu_max_cap_w": data.gpu_max_cap_w,
        "idle_power_w": data.idle_power_w,
        "flexibility_tier": data.flexibility_tier,
        "min_power_w": data.min_power_w,
        "max_power_w": data.max_power_w,
        "curve": [[float(p), float(t)] for p, t in data.curve],
    }
    if data.stock_curve is not None:
        wanted["stock_curve"] = [[float(t), float(p)] for t, p in data.stock_curve]
    node = repository.get_by_name(session, data.name)
    if node is None:
        node = Node(name=data.name, last_seen_at=now, status=NodeStatus.ONLINE, **wanted)
        session.add(node)
        session.flush()
        audit.record(
            session, actor, "node.register", "node", node.id, after=spec_snapshot(node), at=now
        )
        return node, True, True

    before = spec_snapshot(node)
    changed = any(before[k] != v for k, v in wanted.items())
    came_back = status_at(node, now, settings) is NodeStatus.OFFLINE
    for key, value in wanted.items():
        setattr(node, key, value)
    node.last_seen_at = now
    node.status = NodeStatus.ONLINE
    session.flush()
    if changed:
        audit.record(
            session,
            actor,
            "node.update",
            "node",
            node.id,
            before=before,
            after=spec_snapshot(node),
            at=now,
        )
    else:
        audit.record(
            session,
            actor,
            "node.heartbeat",
            "node",
            node.id,
            after={"last_seen_at": now.isoformat()},
            at=now,
        )
    return node, False, changed or came_back


def touch(node: Node, now: datetime) -> None:
    """Mark the node as heard from (telemetry counts as a heartbeat)."""
    if node.last_seen_at is None or node.last_seen_at < now:
        node.last_seen_at = now
    node.status = NodeStatus.ONLINE


def refresh_statuses(session: Session, *, now: datetime, settings: GridlinkSettings) -> int:
    """Persist online -> stale -> offline from ``last_seen_at`` (the scheduler calls this; the
    API derives status on read anyway). Returns how many nodes changed."""
    changed = 0
    for node in repository.list_all(session):
        status = status_at(node, now, settings)
        if status is not node.status:
            node.status = status
            changed += 1
    return changed
