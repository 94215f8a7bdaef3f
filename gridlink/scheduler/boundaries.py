"""Firing budget boundaries exactly once, and keeping the persisted schedule in sync.

Both functions are one unit of work each, with time passed in: the APScheduler wiring
(:mod:`gridlink.scheduler.runner`) calls them at the right wall-clock moments, tests call them
with a :class:`~gridlink.scheduler.clock.ManualClock`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from gridlink.budgets.events import BudgetPublisher
from gridlink.db.engine import session_scope
from gridlink.models.schedule import ScheduleJobKind
from gridlink.scheduler import repository
from gridlink.scheduler.budget_ops import BudgetOps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FireResult:
    """What one firing did: the boundaries it claimed and the version it created (if any)."""

    claimed_due_at: tuple[datetime, ...]
    version_id: int | None


def fire_due(
    factory: sessionmaker[Session],
    ops: BudgetOps,
    publisher: BudgetPublisher,
    *,
    now: datetime,
    owner: str,
    force_reason: str | None = None,
) -> FireResult:
    """Claim every due boundary and recompute once, in one transaction; publish after commit.

    Boundaries missed while the gateway was down are all due at once and coalesce into a single
    recompute. With nothing due, nothing happens unless ``force_reason`` asks for a recompute
    anyway (a node went offline, say). A crash before the commit leaves the rows pending.
    """
    with session_scope(factory) as session:
        claimed = repository.claim_due(session, now=now, owner=owner)
        if not claimed and force_reason is None:
            return FireResult((), None)
        reason = force_reason or _boundary_reason([due for _, due in claimed])
        version_id = ops.recompute(session, now=now, reason=reason)
        repository.record_version(session, [job_id for job_id, _ in claimed], version_id)
    if claimed:
        log.info("fired %d boundary(ies) -> version %s (%s)", len(claimed), version_id, owner)
    if version_id is not None:
        publisher.publish(version_id)
    return FireResult(tuple(due for _, due in claimed), version_id)


def sync_boundaries(
    factory: sessionmaker[Session],
    ops: BudgetOps,
    *,
    now: datetime,
    lookback_s: float,
    lookahead_s: float,
) -> list[datetime]:
    """Persist every boundary in (now - lookback, now + lookahead] not yet known; drop future
    pending rows whose boundary vanished. Returns the pending due times, for the timer.

    Looking back is what makes a boundary that passed while the gateway was down (and was never
    written down) still fire at start: it gets a pending row due in the past.
    """
    with session_scope(factory) as session:
        times = ops.boundaries(
            session,
            after=now - timedelta(seconds=lookback_s),
            until=now + timedelta(seconds=lookahead_s),
        )
        kind = ScheduleJobKind.BOUNDARY
        repository.insert_missing(session, times, kind=kind, now=now)
        repository.drop_vanished(session, after=now, keep=times, kind=kind)
        return repository.pending_due_times(session)


def _boundary_reason(due: list[datetime]) -> str:
    if len(due) == 1:
        return f"schedule: boundary at {due[0].isoformat()}"
    return f"schedule: {len(due)} boundaries {due[0].isoformat()} .. {due[-1].isoformat()}"
