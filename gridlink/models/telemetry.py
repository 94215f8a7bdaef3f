"""Per-node telemetry samples, indexed for time-range scans per node."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base
from gridlink.models.types import BigIntPK


class TelemetrySample(Base):
    __tablename__ = "telemetry_samples"
    __table_args__ = (Index("ix_telemetry_samples_node_id_ts", "node_id", "ts"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    ts: Mapped[datetime]
    power_w: Mapped[float]
    throughput_tok_s: Mapped[float]
    power_cap_w: Mapped[float | None]
    batch_limit: Mapped[int | None]
    qos_violation: Mapped[bool] = mapped_column(default=False)
