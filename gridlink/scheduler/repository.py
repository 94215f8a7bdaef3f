"""All SQL on ``schedule_jobs``. Nothing here commits: callers own the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gridlink.models.schedule import ScheduleJob, ScheduleJobKind, ScheduleJobState


def insert_missing(
    session: Session, due_ats: Iterable[datetime], *, kind: ScheduleJobKind, now: datetime
) -> int:
    """Add a pending row per boundary not yet known (fired or not). Returns how many were new.

    ``ON CONFLICT DO NOTHING`` on the unique (kind, due_at): two writers learning the same
    boundary, or a boundary learnt again after it fired, never produce a second row.
    """
    wanted = sorted(set(due_ats))
    if not wanted:
        return 0
    known = set(
        session.scalars(
            select(ScheduleJob.due_at).where(
                ScheduleJob.kind == kind, ScheduleJob.due_at.in_(wanted)
            )
        )
    )
    rows = [
        {"kind": kind, "due_at": due_at, "state": ScheduleJobState.PENDING, "created_at": now}
        for due_at in wanted
        if due_at not in known
    ]
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(ScheduleJob).on_conflict_do_nothing(index_elements=["kind", "due_at"])
    result = session.execute(stmt.returning(ScheduleJob.id), rows)
    return len(result.all())


def claim_due(session: Session, *, now: datetime, owner: str) -> list[tuple[int, datetime]]:
    """Claim every pending row due at or before ``now``: mark it done, by ``owner``, at ``now``.

    The ``WHERE state = 'pending'`` makes the claim exclusive: on PostgreSQL a concurrent claimer
    blocks on the row locks and, once the winner commits, re-checks the condition and skips the
    rows; on SQLite the database write lock serialises the two. If the claiming transaction rolls
    back (crash, failed recompute), the rows are pending again and fire at the next opportunity.
    """
    due = (ScheduleJob.state == ScheduleJobState.PENDING, ScheduleJob.due_at <= now)
    # Read first: a write statement takes SQLite's database write lock even when it matches
    # nothing, and most calls find nothing due.
    if session.scalar(select(ScheduleJob.id).where(*due).limit(1)) is None:
        return []
    stmt = (
        update(ScheduleJob)
        .where(*due)
        .values(state=ScheduleJobState.DONE, claimed_by=owner, fired_at=now)
        .returning(ScheduleJob.id, ScheduleJob.due_at)
        .execution_options(synchronize_session=False)
    )
    return sorted(((row.id, row.due_at) for row in session.execute(stmt)), key=lambda r: r[1])


def record_version(session: Session, job_ids: Sequence[int], version_id: int | None) -> None:
    if job_ids and version_id is not None:
        session.execute(
            update(ScheduleJob)
            .where(ScheduleJob.id.in_(job_ids))
            .values(budget_version_id=version_id)
            .execution_options(synchronize_session=False)
        )


def drop_vanished(
    session: Session, *, after: datetime, keep: Iterable[datetime], kind: ScheduleJobKind
) -> int:
    """Delete future pending rows whose boundary no longer exists (a cancelled curtailment)."""
    conditions = [
        ScheduleJob.kind == kind,
        ScheduleJob.state == ScheduleJobState.PENDING,
        ScheduleJob.due_at > after,
    ]
    kept = sorted(set(keep))
    if kept:
        conditions.append(ScheduleJob.due_at.not_in(kept))
    if session.scalar(select(ScheduleJob.id).where(*conditions).limit(1)) is None:
        return 0  # read first, as in claim_due
    stmt = delete(ScheduleJob).where(*conditions)
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        stmt.execution_options(synchronize_session=False)
    )
    return result.rowcount


def pending_due_times(session: Session) -> list[datetime]:
    stmt = (
        select(ScheduleJob.due_at)
        .where(ScheduleJob.state == ScheduleJobState.PENDING)
        .distinct()
        .order_by(ScheduleJob.due_at)
    )
    return list(session.scalars(stmt))
