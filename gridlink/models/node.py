"""A GPU serving node that receives power allocations from the gateway."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base, utcnow
from gridlink.models.types import str_enum


class NodeStatus(enum.StrEnum):
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


class Node(Base):
    """A serving node. ``min_power_w`` is every GPU at its minimum cap plus idle power;
    ``curve`` is its power-to-throughput summary from its profile, ``[[power_w, tok_s], ...]``
    from low to high power. ``status`` is refreshed from ``last_seen_at`` on read."""

    __tablename__ = "nodes"
    __table_args__ = (
        CheckConstraint("gpu_count > 0", name="gpu_count_positive"),
        CheckConstraint("min_power_w >= 0 AND max_power_w >= min_power_w", name="power_range"),
        CheckConstraint("flexibility_tier >= 0", name="tier_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    gpu_type: Mapped[str] = mapped_column(String(64))
    gpu_count: Mapped[int]
    min_power_w: Mapped[float]
    max_power_w: Mapped[float]
    gpu_min_cap_w: Mapped[float | None]
    gpu_max_cap_w: Mapped[float | None]
    idle_power_w: Mapped[float] = mapped_column(default=0.0)
    curve: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    # Power at the stock configuration (maximum caps, default batch limit) by load, from the
    # profile: [[throughput_tok_s, power_w], ...]; the reports' model counterfactual uses it.
    stock_curve: Mapped[list[list[float]] | None] = mapped_column(JSON)
    flexibility_tier: Mapped[int] = mapped_column(default=1)
    status: Mapped[NodeStatus] = mapped_column(
        str_enum(NodeStatus, "node_status"), default=NodeStatus.ONLINE
    )
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
