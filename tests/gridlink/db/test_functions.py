"""The per-dialect SQL functions render each dialect's own SQL, and refuse a dialect they lack."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError

from gridlink.db.functions import epoch_s, minute_floor
from gridlink.models.telemetry import TelemetrySample


def _sql(dialect: Dialect) -> str:
    stmt = select(minute_floor(TelemetrySample.ts), epoch_s(TelemetrySample.ts))
    return str(stmt.compile(dialect=dialect))


def test_postgresql_and_sqlite_spell_them_their_own_way() -> None:
    pg = _sql(postgresql.dialect())
    assert "date_trunc('minute', telemetry_samples.ts)" in pg
    assert "extract(epoch from telemetry_samples.ts)" in pg
    lite = _sql(sqlite.dialect())
    assert "strftime('%Y-%m-%d %H:%M:00.000000', telemetry_samples.ts)" in lite
    assert "((julianday(telemetry_samples.ts) - 2440587.5) * 86400.0)" in lite


def test_a_dialect_without_sql_is_refused_by_name() -> None:
    with pytest.raises(CompileError, match=r"minute_floor\(\) has no SQL for the mysql dialect"):
        _sql(mysql.dialect())
