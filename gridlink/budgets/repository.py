"""SQL for budget versions and node allocations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridlink.models.budget import BudgetVersion, NodeAllocation


def latest_version(session: Session) -> BudgetVersion | None:
    return session.scalars(select(BudgetVersion).order_by(BudgetVersion.id.desc()).limit(1)).first()


def get_version(session: Session, version_id: int) -> BudgetVersion | None:
    return session.get(BudgetVersion, version_id)


def allocations(
    session: Session,
    version_id: int,
    *,
    node_id: int | None = None,
    ending_after: datetime | None = None,
) -> list[NodeAllocation]:
    stmt = select(NodeAllocation).where(NodeAllocation.budget_version_id == version_id)
    if node_id is not None:
        stmt = stmt.where(NodeAllocation.node_id == node_id)
    if ending_after is not None:
        stmt = stmt.where(NodeAllocation.end_at > ending_after)
    return list(session.scalars(stmt.order_by(NodeAllocation.node_id, NodeAllocation.start_at)))


def allocations_at(session: Session, version_id: int, at: datetime) -> dict[int, float]:
    stmt = select(NodeAllocation.node_id, NodeAllocation.power_w).where(
        NodeAllocation.budget_version_id == version_id,
        NodeAllocation.start_at <= at,
        NodeAllocation.end_at > at,
    )
    return {node_id: power_w for node_id, power_w in session.execute(stmt)}


def list_versions(session: Session, *, limit: int, before_id: int | None) -> list[BudgetVersion]:
    stmt = select(BudgetVersion)
    if before_id is not None:
        stmt = stmt.where(BudgetVersion.id < before_id)
    return list(session.scalars(stmt.order_by(BudgetVersion.id.desc()).limit(limit)))
