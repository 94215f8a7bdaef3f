from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from gridlink.db.engine import DEFAULT_POOL_RECYCLE_S, build_engine
from gridlink.settings import GridlinkSettings


def _backend_pid(url: str, *, pool_recycle_s: float, wait_s: float) -> tuple[int, int]:
    """The server process behind the pool's connection, before and after ``wait_s`` idle."""
    engine = build_engine(url, pool_recycle_s=pool_recycle_s)
    try:
        with engine.connect() as conn:
            first = conn.scalar(text("SELECT pg_backend_pid()"))
        time.sleep(wait_s)
        with engine.connect() as conn:
            second = conn.scalar(text("SELECT pg_backend_pid()"))
        return int(first), int(second)
    finally:
        engine.dispose()


def test_postgres_connection_is_replaced_once_older_than_recycle(
    make_database: Callable[[str], str],
) -> None:
    url = make_database("postgresql")
    first, second = _backend_pid(url, pool_recycle_s=0.3, wait_s=0.6)
    assert first != second  # a new connection, and with it libpq's buffers


def test_postgres_connection_is_reused_while_younger_than_recycle(
    make_database: Callable[[str], str],
) -> None:
    url = make_database("postgresql")
    first, second = _backend_pid(url, pool_recycle_s=60, wait_s=0.0)
    assert first == second


def test_recycle_must_be_positive() -> None:
    with pytest.raises(ValueError, match="pool_recycle_s must be > 0, got 0"):
        build_engine("sqlite://", pool_recycle_s=0)


def test_setting_defaults_to_the_engine_default_and_refuses_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert GridlinkSettings().db_pool_recycle_s == DEFAULT_POOL_RECYCLE_S
    monkeypatch.setenv("GRIDLINK_DB_POOL_RECYCLE_S", "0")
    with pytest.raises(ValidationError, match="db_pool_recycle_s"):
        GridlinkSettings()
