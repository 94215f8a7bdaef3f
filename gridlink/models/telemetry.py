"""Per-node telemetry: raw samples (kept ``telemetry_raw_retention_days``) and 1-minute rollups.

``telemetry_samples`` is append-mostly and arrives in time order, so on PostgreSQL a BRIN index
on ``ts`` (a few pages for millions of rows) serves the retention scans, while the
``(node_id, ts)`` B-tree serves per-node range reads. On SQLite the same index is a B-tree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base
from gridlink.models.types import BigIntPK


class TelemetrySample(Base):
    __tablename__ = "telemetry_samples"
    __table_args__ = (
        Index("ix_telemetry_samples_node_id_ts", "node_id", "ts"),
        Index(
            "ix_telemetry_samples_ts",
            "ts",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 32},
        ),
        # A node's sample ids are unique: a replayed batch inserts nothing twice.
        Index("ux_telemetry_samples_node_id_sample_id", "node_id", "sample_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    ts: Mapped[datetime]
    power_w: Mapped[float]
    throughput_tok_s: Mapped[float]
    power_cap_w: Mapped[float | None]
    batch_limit: Mapped[int | None]
    requests_waiting: Mapped[int | None]
    qos_violation: Mapped[bool] = mapped_column(default=False)
    sample_id: Mapped[str | None] = mapped_column(String(64))
    """The node's id for the sample (its agent's run id and sequence); None from older nodes."""
    mode: Mapped[str | None] = mapped_column(String(32))
    gpu_power_caps_w: Mapped[list[float] | None] = mapped_column(JSON)
    # Output tokens/s the node was asked for (arrivals), served or not; None when not reported.
    demand_tok_s: Mapped[float | None]


class TelemetryRollup(Base):
    """One node's samples averaged over one minute (``bucket_start`` is the minute's start)."""

    __tablename__ = "telemetry_rollups"
    __table_args__ = (Index("ix_telemetry_rollups_bucket_start", "bucket_start"),)

    node_id: Mapped[int] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    )
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    sample_count: Mapped[int]
    power_w_avg: Mapped[float]
    power_w_max: Mapped[float]
    throughput_tok_s_avg: Mapped[float]
    power_cap_w_avg: Mapped[float | None]
    qos_violation_count: Mapped[int]


class TelemetryMinute(Base):
    """One node's samples summed over one minute, as exact integers, kept as long as rollups.

    Maintained by the database itself: a trigger on ``telemetry_samples`` adds every inserted
    sample (a replayed one that the unique sample id skips is not inserted, so not counted; a
    late one lands in its own minute). Sums are of each value x 1000 rounded to an integer, so
    adding them up in any order gives the same figures: the reports' settlement intervals and
    comparable-day history are built from these rows instead of raw samples.
    """

    __tablename__ = "telemetry_minutes"
    __table_args__ = (Index("ix_telemetry_minutes_minute", "minute"),)

    node_id: Mapped[int] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    samples: Mapped[int]
    power_mw: Mapped[int] = mapped_column(BigInteger)
    """Sum over the samples of round(power_w x 1000)."""
    throughput_mtok_s: Mapped[int] = mapped_column(BigInteger)
    """Sum over the samples of round(throughput_tok_s x 1000)."""
    demand_mtok_s: Mapped[int] = mapped_column(BigInteger)
    """Sum over the samples that carried a demand of round(demand_tok_s x 1000)."""
    demand_samples: Mapped[int]
    qos_violations: Mapped[int]


class TelemetryLateArrival(Base):
    """A stored batch that carried samples older than the settlement delay: telemetry for a
    window that may already be reported (a node replaying its spool after an outage). Written
    with the samples, in the same transaction; the reports' correction check reads, acts on and
    deletes these rows (:mod:`gridlink.reports.corrections`)."""

    __tablename__ = "telemetry_late_arrivals"
    __table_args__ = (Index("ix_telemetry_late_arrivals_stored_at", "stored_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    first_ts: Mapped[datetime]
    last_ts: Mapped[datetime]
    """Newest late sample of the batch (samples newer than the delay are not late)."""
    samples: Mapped[int]
    stored_at: Mapped[datetime]
