"""The SQL the streams need: the latest version id and one version's allocations for all nodes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridlink.budgets import repository as budgets_repository
from gridlink.budgets.matrix import AllocationMatrix
from gridlink.models.auth import ApiToken
from gridlink.models.budget import BudgetVersion
from gridlink.streams.snapshot import Segment, VersionSnapshot


def latest_version_id(session: Session) -> int | None:
    return session.scalar(select(func.max(BudgetVersion.id)))


def live_token_ids(session: Session, token_ids: set[int]) -> set[int]:
    """Those of ``token_ids`` that still exist and are not revoked."""
    stmt = select(ApiToken.id).where(ApiToken.id.in_(token_ids), ApiToken.revoked_at.is_(None))
    return set(session.scalars(stmt))


class MatrixSegments(Mapping[int, list[Segment]]):
    """Each node's segments ending after ``now``, read from the version's matrix when first
    asked for: a version of 10,000 nodes costs per node followed, not per node allocated."""

    def __init__(self, matrix: AllocationMatrix, now: datetime) -> None:
        self._matrix = matrix
        self._now = now
        self._ids = set(matrix.node_ids.tolist())
        self._cache: dict[int, list[Segment]] = {}

    def __getitem__(self, node_id: int) -> list[Segment]:
        segments = self._cache.get(node_id)
        if segments is None:
            if node_id not in self._ids:
                raise KeyError(node_id)
            runs = self._matrix.runs(node_id=node_id, ending_after=self._now)
            segments = self._cache[node_id] = [Segment(s, e, p) for _, s, e, p in runs]
        return segments

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._ids))

    def __len__(self) -> int:
        return len(self._ids)


def load_snapshot(session: Session, version_id: int, *, now: datetime) -> VersionSnapshot | None:
    """One version's allocations, from one row: a change is read once per process, not once per
    subscriber; each node's segments are cut from the matrix when first needed."""
    created_at = session.scalar(
        select(BudgetVersion.created_at).where(BudgetVersion.id == version_id)
    )
    if created_at is None:
        return None
    matrix = budgets_repository.allocation_matrix(session, version_id)
    return VersionSnapshot(version_id, created_at, MatrixSegments(matrix, now))
