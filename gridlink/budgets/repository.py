"""SQL for budget versions and their allocation matrices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from gridlink.budgets.matrix import AllocationMatrix, AllocationPiece
from gridlink.models.budget import BudgetAllocations, BudgetVersion


def latest_version(session: Session) -> BudgetVersion | None:
    return session.scalars(select(BudgetVersion).order_by(BudgetVersion.id.desc()).limit(1)).first()


def get_version(session: Session, version_id: int) -> BudgetVersion | None:
    return session.get(BudgetVersion, version_id)


def add_version(session: Session, version: BudgetVersion, matrix: AllocationMatrix) -> None:
    """Store a version and its allocations: two INSERTs whatever the fleet size."""
    session.add(version)
    session.flush()
    session.execute(
        insert(BudgetAllocations).values(
            budget_version_id=version.id,
            node_count=len(matrix.node_ids),
            matrix=matrix.encode(),
        )
    )


def allocation_matrix(session: Session, version_id: int) -> AllocationMatrix:
    """The version's allocations (empty when it allocated nothing)."""
    blob = session.scalar(
        select(BudgetAllocations.matrix).where(BudgetAllocations.budget_version_id == version_id)
    )
    if blob is None:
        return AllocationMatrix.from_pieces([])
    return AllocationMatrix.decode(blob)


def allocations(
    session: Session,
    version_id: int,
    *,
    node_id: int | None = None,
    ending_after: datetime | None = None,
) -> list[AllocationPiece]:
    """The version's merged allocation pieces, ordered by node, then start."""
    matrix = allocation_matrix(session, version_id)
    return matrix.pieces(node_id=node_id, ending_after=ending_after)


def allocations_at(session: Session, version_id: int, at: datetime) -> dict[int, float]:
    return allocation_matrix(session, version_id).power_at(at)


def list_versions(session: Session, *, limit: int, before_id: int | None) -> list[BudgetVersion]:
    stmt = select(BudgetVersion)
    if before_id is not None:
        stmt = stmt.where(BudgetVersion.id < before_id)
    return list(session.scalars(stmt.order_by(BudgetVersion.id.desc()).limit(limit)))
