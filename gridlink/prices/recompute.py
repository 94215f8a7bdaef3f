"""Background writers of events (the OpenADR VEN, the price file poller): one unit of work that
stores the signals, recomputes the budget when they changed, commits, then publishes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from gridlink.budgets.events import BudgetPublisher
from gridlink.db.engine import session_scope
from gridlink.scheduler.budget_ops import ServiceBudgetOps
from gridlink.settings import GridlinkSettings


def recompute_and_publish(
    factory: sessionmaker[Session],
    publisher: BudgetPublisher,
    settings: GridlinkSettings,
    now: datetime,
    work: Callable[[Session], str | None],
) -> int | None:
    """Run ``work`` (it returns a recompute reason when signals changed, else None); recompute
    in the same transaction; publish the new version after the commit. The version id or None."""
    with session_scope(factory) as session:
        reason = work(session)
        version_id = None
        if reason is not None:
            version_id = ServiceBudgetOps(settings).recompute(session, now=now, reason=reason)
    if version_id is not None:
        publisher.publish(version_id)
    return version_id
