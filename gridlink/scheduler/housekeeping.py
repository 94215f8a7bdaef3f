"""Periodic housekeeping run by the scheduler leader: node liveness and telemetry retention."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gridlink.nodes import service as nodes_service
from gridlink.settings import GridlinkSettings
from gridlink.telemetry.schemas import DownsampleReport
from gridlink.telemetry.service import downsample_and_prune


def refresh_node_status(session: Session, *, now: datetime, settings: GridlinkSettings) -> int:
    """Store each node's status (online -> stale -> offline by ``last_seen_at``, the nodes
    service's rule). Returns how many changed; the caller then recomputes the budget (offline
    nodes get no allocation; the recompute stores nothing when the result is unchanged)."""
    changed = nodes_service.refresh_statuses(session, now=now, settings=settings)
    session.flush()
    return changed


def run_telemetry_retention(
    session: Session, *, now: datetime, settings: GridlinkSettings
) -> DownsampleReport:
    """Roll old raw telemetry up into 1-minute averages and prune past the retention."""
    return downsample_and_prune(session, now, settings)
