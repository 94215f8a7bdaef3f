"""Boundaries fire exactly once, at the right time, on a virtual clock; missed ones catch up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models import BudgetVersion, ScheduleJob, ScheduleJobState
from gridlink.scheduler.boundaries import fire_due, sync_boundaries
from gridlink.scheduler.clock import ManualClock
from tests.gridlink.fakes import FakeBudgetOps, RecordingPublisher

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
DAY_S = 86_400.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _sync(factory: sessionmaker[Session], ops: FakeBudgetOps, now: datetime) -> list[datetime]:
    return sync_boundaries(factory, ops, now=now, lookback_s=DAY_S, lookahead_s=DAY_S)


def _rows(factory: sessionmaker[Session]) -> list[ScheduleJob]:
    with factory() as session:
        return list(session.scalars(select(ScheduleJob).order_by(ScheduleJob.due_at)))


def _versions(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(BudgetVersion)) or 0


def test_each_boundary_fires_once_when_due(factory: sessionmaker[Session]) -> None:
    clock = ManualClock(T0)
    ops = FakeBudgetOps([at(10), at(20)])
    publisher = RecordingPublisher()
    assert _sync(factory, ops, clock.now()) == [at(10), at(20)]

    clock.advance(9.999)
    assert fire_due(factory, ops, publisher, now=clock.now(), owner="a").claimed_due_at == ()
    assert ops.recomputes == []

    clock.set(at(10))
    first = fire_due(factory, ops, publisher, now=clock.now(), owner="a")
    assert first.claimed_due_at == (at(10),)
    assert first.version_id is not None
    assert publisher.published == [first.version_id]
    assert ops.recomputes == [(at(10), f"schedule: boundary at {at(10).isoformat()}")]

    # Firing again at the same instant, or re-learning the boundary, does nothing.
    assert fire_due(factory, ops, publisher, now=clock.now(), owner="a").claimed_due_at == ()
    assert _sync(factory, ops, clock.now()) == [at(20)]
    assert fire_due(factory, ops, publisher, now=clock.now(), owner="b").claimed_due_at == ()

    clock.set(at(20.5))
    assert fire_due(factory, ops, publisher, now=clock.now(), owner="b").claimed_due_at == (at(20),)
    rows = _rows(factory)
    assert [(r.due_at, r.state, r.claimed_by) for r in rows] == [
        (at(10), ScheduleJobState.DONE, "a"),
        (at(20), ScheduleJobState.DONE, "b"),
    ]
    assert rows[0].fired_at == at(10) and rows[1].fired_at == at(20.5)
    assert rows[0].budget_version_id == first.version_id
    assert len(ops.recomputes) == 2 and _versions(factory) == 2


def test_boundaries_missed_while_down_coalesce_into_one_recompute(
    factory: sessionmaker[Session],
) -> None:
    ops = FakeBudgetOps([at(10), at(20), at(30), at(100)])
    publisher = RecordingPublisher()
    _sync(factory, ops, T0)
    # The gateway is down from T0 to T0+35 s; at start it fires everything due, once.
    result = fire_due(factory, ops, publisher, now=at(35), owner="restarted")
    assert result.claimed_due_at == (at(10), at(20), at(30))
    assert len(ops.recomputes) == 1 and len(publisher.published) == 1
    assert [r.state for r in _rows(factory)] == ["done", "done", "done", "pending"]


def test_a_boundary_never_written_down_is_found_by_looking_back(
    factory: sessionmaker[Session],
) -> None:
    """A curtailment created just before a crash: its boundary passed while nothing ran."""
    ops = FakeBudgetOps([])
    publisher = RecordingPublisher()
    _sync(factory, ops, T0)
    ops.boundary_list.append(at(5))  # committed by an endpoint; the scheduler died before syncing
    pending = _sync(factory, ops, at(60))  # restart a minute later
    assert pending == [at(5)]
    assert fire_due(factory, ops, publisher, now=at(60), owner="x").claimed_due_at == (at(5),)
    assert _sync(factory, ops, at(61)) == []
    assert fire_due(factory, ops, publisher, now=at(61), owner="x").claimed_due_at == ()


def test_a_failed_recompute_leaves_the_boundary_pending(factory: sessionmaker[Session]) -> None:
    ops = FakeBudgetOps([at(10)])
    publisher = RecordingPublisher()
    _sync(factory, ops, T0)
    ops.fail_next = True
    with pytest.raises(RuntimeError):
        fire_due(factory, ops, publisher, now=at(10), owner="x")
    assert [r.state for r in _rows(factory)] == ["pending"]
    assert publisher.published == [] and _versions(factory) == 0
    assert fire_due(factory, ops, publisher, now=at(11), owner="x").claimed_due_at == (at(10),)
    assert _versions(factory) == 1


def test_vanished_future_boundaries_are_dropped_fired_ones_kept(
    factory: sessionmaker[Session],
) -> None:
    ops = FakeBudgetOps([at(10), at(20), at(30)])
    publisher = RecordingPublisher()
    _sync(factory, ops, T0)
    fire_due(factory, ops, publisher, now=at(10), owner="x")
    ops.boundary_list = []  # the curtailment was cancelled
    assert _sync(factory, ops, at(11)) == []
    assert [(r.due_at, r.state) for r in _rows(factory)] == [(at(10), "done")]


def test_a_forced_recompute_runs_with_nothing_due(factory: sessionmaker[Session]) -> None:
    ops = FakeBudgetOps([])
    publisher = RecordingPublisher()
    result = fire_due(
        factory, ops, publisher, now=T0, owner="x", force_reason="node status: 1 node(s) changed"
    )
    assert result.claimed_due_at == () and result.version_id is not None
    assert publisher.published == [result.version_id]


def test_two_schedulers_racing_on_one_due_row_fire_it_once(
    factory: sessionmaker[Session],
) -> None:
    """Two replicas (two engines) claim at the same instant; the recompute holds the
    transaction open so the claims overlap. Exactly one wins; the loser sees nothing due."""
    bind = factory.kw["bind"]
    ops = FakeBudgetOps([at(10)], hold_s=0.3)
    _sync(factory, ops, T0)
    publishers = [RecordingPublisher(), RecordingPublisher()]
    results: dict[str, tuple[datetime, ...]] = {}
    barrier = threading.Barrier(2)

    def replica(name: str, index: int) -> None:
        from gridlink.db.engine import build_engine, build_sessionmaker

        engine = build_engine(bind.url.render_as_string(hide_password=False))
        try:
            barrier.wait()
            result = fire_due(
                build_sessionmaker(engine), ops, publishers[index], now=at(10), owner=name
            )
            results[name] = result.claimed_due_at
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica, args=(f"r{i}", i)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(results.values()) == [(), (at(10),)]
    assert len(ops.recomputes) == 1 and _versions(factory) == 1
    assert sum(len(p.published) for p in publishers) == 1
    (row,) = _rows(factory)
    assert row.state == "done" and results[row.claimed_by or ""] == (at(10),)
