"""Periodic housekeeping run by the scheduler leader: node liveness and telemetry retention."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.models.node import Node, NodeStatus
from gridlink.nodes.service import status_at
from gridlink.settings import GridlinkSettings
from gridlink.telemetry.schemas import DownsampleReport
from gridlink.telemetry.service import downsample_and_prune


def refresh_node_status(session: Session, *, now: datetime, settings: GridlinkSettings) -> int:
    """Store each node's status (online -> stale -> offline by ``last_seen_at``, the nodes
    service's rule) where it changed. Returns how many nodes entered or left ``offline``: those
    change the allocation (offline nodes get none), so the caller recomputes the budget."""
    allocation_changes = 0
    for node in session.scalars(select(Node).with_for_update()):
        status = status_at(node, now, settings)
        if status is node.status:
            continue
        if NodeStatus.OFFLINE in (status, node.status):
            allocation_changes += 1
        node.status = status
    session.flush()
    return allocation_changes


def run_telemetry_retention(
    session: Session, *, now: datetime, settings: GridlinkSettings
) -> DownsampleReport:
    """Roll old raw telemetry up into 1-minute averages and prune past the retention."""
    return downsample_and_prune(session, now, settings)
