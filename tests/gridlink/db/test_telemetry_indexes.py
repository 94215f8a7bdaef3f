"""The time index on telemetry_samples is BRIN on PostgreSQL and a B-tree on SQLite."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session


def test_ts_index_kind(db_session: Session) -> None:
    bind = db_session.get_bind()
    if bind.dialect.name == "postgresql":
        definition = db_session.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_telemetry_samples_ts'")
        )
        assert definition is not None and "USING brin (ts)" in definition
        assert "pages_per_range='32'" in definition
    else:
        names = {ix["name"] for ix in inspect(bind).get_indexes("telemetry_samples")}
        assert {"ix_telemetry_samples_ts", "ix_telemetry_samples_node_id_ts"} <= names
