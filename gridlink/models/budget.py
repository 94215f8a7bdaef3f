"""Versions of the facility power budget and the per-node allocations derived from each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base, utcnow


class BudgetVersion(Base):
    """A recomputed facility budget trajectory, kept with the reason and inputs that made it."""

    __tablename__ = "budget_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reason: Mapped[str] = mapped_column(String(256))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    trajectory: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class BudgetAllocations(Base):
    """Every node's allocation in one version, as one compressed matrix
    (``gridlink.budgets.matrix``): one row per version, whatever the fleet size."""

    __tablename__ = "budget_allocations"

    budget_version_id: Mapped[int] = mapped_column(
        ForeignKey("budget_versions.id", ondelete="CASCADE"), primary_key=True
    )
    node_count: Mapped[int]
    matrix: Mapped[bytes] = mapped_column(LargeBinary)
