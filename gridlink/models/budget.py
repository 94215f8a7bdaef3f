"""Versions of the facility power budget and the per-node allocations derived from each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridlink.db.base import Base, utcnow


class BudgetVersion(Base):
    """A recomputed facility budget trajectory, kept with the reason and inputs that made it."""

    __tablename__ = "budget_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reason: Mapped[str] = mapped_column(String(256))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    trajectory: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    allocations: Mapped[list[NodeAllocation]] = relationship(
        back_populates="budget_version", cascade="all, delete-orphan"
    )


class NodeAllocation(Base):
    """A piecewise-constant segment of one node's power allocation within a budget version."""

    __tablename__ = "node_allocations"
    __table_args__ = (
        CheckConstraint("power_w >= 0", name="power_nonnegative"),
        CheckConstraint("end_at > start_at", name="segment_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    budget_version_id: Mapped[int] = mapped_column(
        ForeignKey("budget_versions.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    power_w: Mapped[float]

    budget_version: Mapped[BudgetVersion] = relationship(back_populates="allocations")
