"""The SQL the streams need: the latest version id and one version's allocations for all nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridlink.models.budget import BudgetVersion, NodeAllocation
from gridlink.streams.snapshot import Segment, VersionSnapshot


def latest_version_id(session: Session) -> int | None:
    return session.scalar(select(func.max(BudgetVersion.id)))


def load_snapshot(session: Session, version_id: int, *, now: datetime) -> VersionSnapshot | None:
    """Every node's segments in one version that end after ``now``, in one query: a change is
    read once per process, not once per subscriber."""
    version = session.get(BudgetVersion, version_id)
    if version is None:
        return None
    rows = session.execute(
        select(
            NodeAllocation.node_id,
            NodeAllocation.start_at,
            NodeAllocation.end_at,
            NodeAllocation.power_w,
        )
        .where(NodeAllocation.budget_version_id == version_id, NodeAllocation.end_at > now)
        .order_by(NodeAllocation.node_id, NodeAllocation.start_at)
    ).all()
    segments: dict[int, list[Segment]] = {}
    for node_id, start, end, power_w in rows:
        segments.setdefault(node_id, []).append(Segment(start, end, power_w))
    return VersionSnapshot(version.id, version.created_at, segments)
