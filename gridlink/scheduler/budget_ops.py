"""The two budget operations the scheduler needs, behind a small interface.

The real implementation delegates to the budgets service (``gridlink.budgets.service``); tests
substitute a fake that records calls. Imports happen on first use, never at import time.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

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
        version = _service().recompute_budget(
            session, now=now, reason=reason, settings=self._settings
        )
        if version is None:
            return None
        session.flush()
        return int(version.id)

    def boundaries(self, session: Session, *, after: datetime, until: datetime) -> list[datetime]:
        return list(_service().upcoming_boundaries(session, after=after, until=until))


def _service() -> Any:
    """The budgets service module, imported on first use (it pulls in the planner)."""
    return importlib.import_module("gridlink.budgets.service")
