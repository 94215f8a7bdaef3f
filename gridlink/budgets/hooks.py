"""The edge between write endpoints and budgets: recompute in the request's transaction, and
publish the new version only after that transaction commits."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from sqlalchemy.orm import Session

from gridlink.api.deps import after_commit
from gridlink.audit import service as audit
from gridlink.auth.principal import Principal
from gridlink.budgets.service import recompute_budget
from gridlink.models.budget import BudgetVersion
from gridlink.settings import GridlinkSettings


def recompute_and_publish(
    request: Request,
    session: Session,
    *,
    actor: Principal,
    now: datetime,
    reason: str,
    settings: GridlinkSettings,
) -> BudgetVersion | None:
    version = recompute_budget(session, now=now, reason=reason, settings=settings)
    if version is not None:
        audit.record(
            session,
            actor,
            "budget.version",
            "budget_version",
            version.id,
            after={"reason": version.reason, "segments": len(version.trajectory)},
            at=now,
        )
        version_id = version.id
        publisher = request.app.state.publisher
        after_commit(session, lambda: publisher.publish(version_id))
    return version
