from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from gridlink.models import Node, TelemetrySample


def _node(name: str = "node-a") -> Node:
    return Node(name=name, gpu_type="H100-SXM", gpu_count=8, min_power_w=1800, max_power_w=5600)


def test_timestamps_round_trip_as_aware_utc(db_session: Session) -> None:
    node = _node()
    db_session.add(node)
    db_session.flush()
    plus_two = timezone(timedelta(hours=2))
    ts = datetime(2026, 7, 1, 14, 0, tzinfo=plus_two)
    db_session.add(
        TelemetrySample(
            node_id=node.id,
            ts=ts,
            power_w=4000.0,
            throughput_tok_s=9000.0,
            power_cap_w=600.0,
            batch_limit=128,
        )
    )
    db_session.flush()
    db_session.expire_all()
    stored = db_session.scalars(select(TelemetrySample)).one()
    assert stored.ts.tzinfo is not None
    assert stored.ts.utcoffset() == timedelta(0)
    assert stored.ts == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def test_naive_datetimes_are_refused(db_session: Session) -> None:
    node = _node()
    db_session.add(node)
    db_session.flush()
    db_session.add(
        TelemetrySample(
            node_id=node.id,
            ts=datetime(2026, 7, 1, 12, 0),
            power_w=1.0,
            throughput_tok_s=1.0,
            power_cap_w=None,
            batch_limit=None,
        )
    )
    with pytest.raises(StatementError, match="naive datetime"):
        db_session.flush()


def test_each_test_starts_from_an_empty_database(db_session: Session) -> None:
    # the previous tests added nodes; their transactions were rolled back
    assert db_session.scalars(select(Node)).all() == []
    db_session.add(_node("committed-inside-test"))
    db_session.commit()  # a savepoint: still rolled back at the end
    assert len(db_session.scalars(select(Node)).all()) == 1
