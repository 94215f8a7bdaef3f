"""The persisted schedule: one row per upcoming budget boundary, fired exactly once.

A row is created ``pending`` when the scheduler learns of a boundary, and turned ``done`` by the
conditional UPDATE that claims it, in the same transaction as the recompute it triggers. The
unique (kind, due_at) pair makes re-learning a boundary a no-op, so a boundary that was fired is
never scheduled again, and one that was missed while the gateway was down is still ``pending``.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gridlink.db.base import Base, utcnow
from gridlink.models.types import str_enum


class ScheduleJobKind(enum.StrEnum):
    BOUNDARY = "boundary"


class ScheduleJobState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"


class ScheduleJob(Base):
    __tablename__ = "schedule_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "due_at"),
        Index("ix_schedule_jobs_state_due_at", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ScheduleJobKind] = mapped_column(str_enum(ScheduleJobKind, "schedule_job_kind"))
    due_at: Mapped[datetime]
    state: Mapped[ScheduleJobState] = mapped_column(
        str_enum(ScheduleJobState, "schedule_job_state"), default=ScheduleJobState.PENDING
    )
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    fired_at: Mapped[datetime | None]
    budget_version_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
