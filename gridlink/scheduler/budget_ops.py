"""The two budget operations the scheduler needs, behind a small interface.

The real implementation is the budgets service, audited as the system principal (like the
CLI); tests substitute a fake that records calls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from gridlink.audit import service as audit
from gridlink.auth.principal import SYSTEM
from gridlink.budgets.service import recompute_budget, upcoming_boundaries
from gridlink.settings import GridlinkSettings


class BudgetOps(Protocol):
    def recompute(self, session: Session, *, now: datetime, reason: str) -> int | None:
        """Recompute the budget in ``session`` (no commit); the new version id, or None."""
        ...

    def boundaries(self, session: Session, *, after: datetime, until: datetime) -> list[datetime]:
        """Every instant in (after, until] at which the budget changes."""
        ...


class ServiceBudgetOps:
    """:class:`BudgetOps` on the budgets service."""

    def __init__(self, settings: GridlinkSettings) -> None:
        self._settings = settings

    def recompute(self, session: Session, *, now: datetime, reason: str) -> int | None:
        version = recompute_budget(session, now=now, reason=reason, settings=self._settings)
        if version is None:
            return None
        audit.record(
            session,
            SYSTEM,
            "budget.version",
            "budget_version",
            version.id,
            after={"reason": version.reason, "segments": len(version.trajectory)},
            at=now,
        )
        return version.id

    def boundaries(self, session: Session, *, after: datetime, until: datetime) -> list[datetime]:
        return upcoming_boundaries(session, after=after, until=until)
