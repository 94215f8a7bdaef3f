"""The revision that stores allocations as one matrix per version converts the existing rows,
and its downgrade converts them back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from gridlink.budgets import repository
from gridlink.budgets.matrix import AllocationPiece
from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from tests.conftest import BACKENDS

BEFORE = "6719fc616ea0"
REVISION = "b7e4c2a9d1f3"
T = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
ROWS = [  # node, start, end, power
    (1, T, T + timedelta(minutes=30), 650.125),
    (1, T + timedelta(minutes=30), T + timedelta(hours=1), 400.0),
    (2, T, T + timedelta(hours=1), 300.5),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_become_a_matrix_and_back(backend: str, make_database: Callable[[str], str]) -> None:
    url = make_database(backend)
    migrate.upgrade(url, BEFORE)
    engine = build_engine(url)

    def at(value: datetime) -> object:  # SQLite stores naive UTC text (see UTCDateTime)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if backend == "sqlite" else value

    try:
        with engine.begin() as conn:
            for name in ("a", "b"):
                conn.execute(
                    text(
                        "INSERT INTO nodes (name, gpu_type, gpu_count, min_power_w, max_power_w, "
                        "idle_power_w, curve, flexibility_tier, status, created_at, updated_at) "
                        "VALUES (:n, 'H100', 1, 100, 700, 0, '[]', 1, 'online', :t, :t)"
                    ),
                    {"n": name, "t": at(T)},
                )
            conn.execute(
                text(
                    "INSERT INTO budget_versions (id, created_at, reason, inputs, trajectory) "
                    "VALUES (1, :t, 'old', '{}', '[]')"
                ),
                {"t": at(T)},
            )
            for node_id, start, end, power_w in ROWS:
                conn.execute(
                    text(
                        "INSERT INTO node_allocations (budget_version_id, node_id, start_at, "
                        "end_at, power_w) VALUES (1, :n, :s, :e, :p)"
                    ),
                    {"n": node_id, "s": at(start), "e": at(end), "p": power_w},
                )
        migrate.upgrade(url, REVISION)
        with build_sessionmaker(engine)() as session:
            assert repository.allocations(session, 1) == [AllocationPiece(*r) for r in ROWS]
        migrate.downgrade(url, BEFORE)
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM node_allocations")).scalar()
            total = conn.execute(text("SELECT sum(power_w) FROM node_allocations")).scalar()
        assert (count, total) == (3, pytest.approx(sum(r[3] for r in ROWS)))
    finally:
        engine.dispose()
