"""The APScheduler wiring on real time: timers armed from the table fire each boundary once,
a change re-arms them, a restart rebuilds them, node status housekeeping recomputes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.models import Node, NodeStatus, ScheduleJob
from gridlink.scheduler.runner import GatewayScheduler
from gridlink.settings import GridlinkSettings
from tests.gridlink.fakes import FakeBudgetOps, RecordingPublisher, add_node


def _settings(**overrides: float) -> GridlinkSettings:
    values = {
        "scheduler_leader_retry_s": 0.2,
        "scheduler_sync_interval_s": 30.0,
        "node_status_interval_s": 30.0,
        **overrides,
    }
    return GridlinkSettings(**values)  # type: ignore[arg-type]


def _scheduler(
    factory: sessionmaker[Session], ops: FakeBudgetOps, settings: GridlinkSettings, owner: str
) -> tuple[GatewayScheduler, RecordingPublisher]:
    publisher = RecordingPublisher()
    url = factory.kw["bind"].url.render_as_string(hide_password=False)
    scheduler = GatewayScheduler(factory, ops, publisher, settings, database_url=url, owner=owner)
    return scheduler, publisher


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _fired(factory: sessionmaker[Session]) -> list[tuple[datetime, str | None]]:
    with factory() as session:
        rows = session.scalars(
            select(ScheduleJob).where(ScheduleJob.state == "done").order_by(ScheduleJob.due_at)
        )
        return [(r.due_at, r.claimed_by) for r in rows]


def test_boundaries_fire_on_time_once_and_changes_rearm(factory: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    first, second = now + timedelta(seconds=0.6), now + timedelta(seconds=1.2)
    ops = FakeBudgetOps([first, second])
    scheduler, publisher = _scheduler(factory, ops, _settings(), "solo")
    scheduler.start()
    try:
        assert _wait(lambda: scheduler.pending_timers() == [first, second])
        assert _wait(lambda: len(ops.recomputes) == 2, 5)
        fire_times = [t for t, _ in ops.recomputes]
        assert first <= fire_times[0] < first + timedelta(seconds=0.5)
        assert second <= fire_times[1] < second + timedelta(seconds=0.5)
        # (the recompute is recorded just before its transaction commits)
        assert _wait(lambda: _fired(factory) == [(first, "solo"), (second, "solo")])
        assert _wait(lambda: len(publisher.published) == 2)

        # A change (a new version published anywhere) brings a new boundary in.
        third = datetime.now(UTC) + timedelta(seconds=0.5)
        ops.boundary_list.append(third)
        scheduler.notify_change(publisher.published[-1])
        assert _wait(lambda: len(ops.recomputes) == 3, 5)
        time.sleep(0.3)
        assert len(ops.recomputes) == 3
        assert _wait(lambda: [t for t, _ in _fired(factory)] == [first, second, third])
    finally:
        scheduler.stop()


def test_a_restart_rebuilds_timers_and_catches_up_once(factory: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    soon, later = now + timedelta(seconds=0.4), now + timedelta(seconds=60)
    ops = FakeBudgetOps([soon, later])
    scheduler, _ = _scheduler(factory, ops, _settings(), "first")
    scheduler.start()
    assert _wait(lambda: scheduler.pending_timers() == [soon, later])
    scheduler.stop()  # down before `soon`
    time.sleep(0.6)
    assert ops.recomputes == []

    restarted, _ = _scheduler(factory, ops, _settings(), "second")
    restarted.start()
    try:
        assert _wait(lambda: len(ops.recomputes) == 1)
        assert _wait(lambda: restarted.pending_timers() == [later])
        time.sleep(0.3)
        assert len(ops.recomputes) == 1
        assert _wait(lambda: _fired(factory) == [(soon, "second")])
    finally:
        restarted.stop()


def test_node_status_housekeeping_marks_and_recomputes(factory: sessionmaker[Session]) -> None:
    now = datetime.now(UTC)
    with factory() as session:
        fresh, quiet, gone = (add_node(session, n) for n in ("fresh", "quiet", "gone"))
        fresh.last_seen_at = now
        quiet.last_seen_at = now - timedelta(seconds=60)
        gone.last_seen_at = now - timedelta(seconds=600)
        session.commit()
    ops = FakeBudgetOps([])
    settings = _settings(
        node_status_interval_s=0.2, node_stale_after_s=30, node_offline_after_s=300
    )
    scheduler, publisher = _scheduler(factory, ops, settings, "hk")
    scheduler.start()
    try:
        assert _wait(lambda: len(publisher.published) == 1)
        with factory() as session:
            statuses = dict(session.execute(select(Node.name, Node.status)).all())
        assert statuses == {
            "fresh": NodeStatus.ONLINE,
            "quiet": NodeStatus.STALE,
            "gone": NodeStatus.OFFLINE,
        }
        assert ops.recomputes[0][1] == "node status: 2 node(s) changed"
        time.sleep(0.5)  # later rounds change nothing and recompute nothing
        assert len(ops.recomputes) == 1
    finally:
        scheduler.stop()
