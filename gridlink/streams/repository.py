"""The SQL the streams need: the latest version id and one version's allocations for all nodes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridlink.budgets import repository as budgets_repository
from gridlink.models.auth import ApiToken
from gridlink.models.budget import BudgetVersion
from gridlink.streams.snapshot import Segment, VersionSnapshot


def latest_version_id(session: Session) -> int | None:
    return session.scalar(select(func.max(BudgetVersion.id)))


def live_token_ids(session: Session, token_ids: set[int]) -> set[int]:
    """Those of ``token_ids`` that still exist and are not revoked."""
    stmt = select(ApiToken.id).where(ApiToken.id.in_(token_ids), ApiToken.revoked_at.is_(None))
    return set(session.scalars(stmt))


def load_snapshot(session: Session, version_id: int, *, now: datetime) -> VersionSnapshot | None:
    """Every node's segments in one version that end after ``now``, from one row: a change is
    read once per process, not once per subscriber."""
    version = session.get(BudgetVersion, version_id)
    if version is None:
        return None
    matrix = budgets_repository.allocation_matrix(session, version_id)
    segments: dict[int, list[Segment]] = {}
    for node_id, start, end, power_w in matrix.runs(ending_after=now):
        segments.setdefault(node_id, []).append(Segment(start, end, power_w))
    return VersionSnapshot(version.id, version.created_at, segments)
