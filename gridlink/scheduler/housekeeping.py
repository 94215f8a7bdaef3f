"""Periodic housekeeping run by the scheduler leader: node liveness and telemetry retention."""

from __future__ import annotations

import importlib
import inspect
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, update
from sqlalchemy.orm import Session

from gridlink.models.node import Node, NodeStatus
from gridlink.settings import GridlinkSettings

log = logging.getLogger(__name__)


def refresh_node_status(
    session: Session, *, now: datetime, stale_after_s: float, offline_after_s: float
) -> int:
    """Move nodes between online, stale and offline by how long ago they were last seen.

    Returns how many nodes changed status, so the caller can recompute the budget (the allocator
    treats offline nodes differently). Nodes never seen keep their status.
    """
    stale_at = now - timedelta(seconds=stale_after_s)
    offline_at = now - timedelta(seconds=max(offline_after_s, stale_after_s))
    seen = Node.last_seen_at.is_not(None)
    rules = [
        (NodeStatus.OFFLINE, and_(seen, Node.last_seen_at < offline_at)),
        (
            NodeStatus.STALE,
            and_(seen, Node.last_seen_at < stale_at, Node.last_seen_at >= offline_at),
        ),
        (NodeStatus.ONLINE, and_(seen, Node.last_seen_at >= stale_at)),
    ]
    changed = 0
    for status, condition in rules:
        stmt = (
            update(Node)
            .where(condition, Node.status != status)
            .values(status=status, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
        changed += result.rowcount
    return changed


def run_telemetry_retention(session: Session, *, now: datetime, settings: GridlinkSettings) -> Any:
    """Downsample and prune telemetry with the telemetry service, when it provides that.

    Returns the service's result, or None when the service has no ``downsample_and_prune``.
    """
    try:
        module = importlib.import_module("gridlink.telemetry.service")
    except ImportError:
        return None
    func = getattr(module, "downsample_and_prune", None)
    if func is None:
        return None
    params = inspect.signature(func).parameters
    kwargs: dict[str, Any] = {}
    if "now" in params:
        kwargs["now"] = now
    if "settings" in params:
        kwargs["settings"] = settings
    return func(session, **kwargs)
