"""Audit reports of delivered reductions: immutable, content-hashed, versioned per subject.

A *subject* is what a report is about: one event lineage (``event:<source>:<external_id>``) or
one window (``window:<start>/<end>``), at one settlement interval length. Each generation that
found different inputs adds a version; a version is never updated. ``previous_id`` links a
correction (late telemetry, a changed event) to the version it replaces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("subject", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("interval_s > 0", name="interval_positive"),
        Index("ix_reports_event_key", "event_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(400))
    version: Mapped[int]
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="RESTRICT"))
    # ``<source>:<external_id>`` of the event lineage; None for a window report.
    event_key: Mapped[str | None] = mapped_column(String(300))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    interval_s: Mapped[int]
    trigger: Mapped[str] = mapped_column(String(32))
    generated_at: Mapped[datetime]
    generated_by: Mapped[str] = mapped_column(String(128))
    inputs_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReportHistoryInterval(Base):
    """Cached facility power of one past settlement interval, for the high-X-of-Y baseline's
    comparable days: the sum over nodes of each node's mean power there, in mW (None: nobody
    reported). A cache, never an input: a database trigger deletes the rows a change of
    telemetry touches (a late sample, pruning, a node removed), and the reports compute and
    store them again from the node-minute sums when they next need them."""

    __tablename__ = "report_history_intervals"
    __table_args__ = (Index("ix_report_history_intervals_bucket_start", "bucket_start"),)

    interval_s: Mapped[int] = mapped_column(primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    power_mw: Mapped[int | None] = mapped_column(BigInteger)
