"""THE restart test: kill -9 the gateway in the middle of a curtailment and start it again.

A real ``python -m gridlink serve`` subprocess on a loopback port; a node follows its allocation
stream with the project's client throughout. Curtailment boundaries fall during the test:

    b1 = T+2 s    C1 starts    fired live by the first process
    (SIGKILL at b1 + 0.5 s, in the middle of C1)
    b2 = T+5 s    C1 ends      passes while nothing runs; fired once by the restart's catch-up
    (restart at b2 + 0.5 s on the same port)
    b3, b4        C2 start/end (T+8.5 s, T+9.5 s): fired live by the second process, or, if it
                  started slowly, b3 with b2 in the same catch-up recompute

Checked: every boundary has one schedule row, fired exactly once, by the right process, at the
right time; scheduled recomputes create at most one budget version per firing; the stream
resumes (Last-Event-ID: nothing resent) and delivers a change made after the restart; the
trajectory the node held while the gateway was down agrees with the one served afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import SYSTEM
from gridlink.auth.service import create_token
from gridlink.budgets.schemas import NodeTrajectory
from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.models import BudgetVersion, Role, ScheduleJob
from gridlink.streams.client import AllocationUpdate, follow_allocation
from tests.conftest import BACKENDS
from tests.gridlink.live import free_port

pytestmark = pytest.mark.slow


class GatewayProcess:
    """``python -m gridlink serve`` on a fixed port, started and killed at will."""

    def __init__(self, env: dict[str, str], port: int, log_dir: Path) -> None:
        self.env = env
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> int:
        self.starts += 1
        log = (self.log_dir / f"gateway-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gridlink", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (
                self.log_dir / f"gateway-{self.starts}.log"
            ).read_text()
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1, trust_env=False).is_success:
                    return self.proc.pid
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("gateway did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Follower:
    """A node agent: follows the stream in a thread, records what it got and when."""

    def __init__(self, base_url: str, node_id: int, token: str) -> None:
        self.updates: list[tuple[float, AllocationUpdate]] = []
        self._args = (base_url, node_id, token)
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._follow())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)

    async def _follow(self) -> None:
        stream = follow_allocation(*self._args, initial_backoff_s=0.1, max_backoff_s=0.5)
        async for update in stream:
            self.updates.append((time.time(), update))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=10)

    def latest(self) -> NodeTrajectory | None:
        return self.updates[-1][1].trajectory if self.updates else None


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _sleep_until(at: datetime) -> None:
    delay_s = (at - datetime.now(UTC)).total_seconds()
    if delay_s > 0:
        time.sleep(delay_s)


def _jobs(factory: sessionmaker[Session]) -> dict[datetime, ScheduleJob]:
    with factory() as session:
        return {job.due_at: job for job in session.scalars(select(ScheduleJob))}


def _done(factory: sessionmaker[Session], due_at: datetime) -> bool:
    job = _jobs(factory).get(due_at)
    return job is not None and job.state == "done"


@pytest.fixture(params=BACKENDS)
def database(
    request: pytest.FixtureRequest, make_database: Callable[[str], str]
) -> Iterator[tuple[str, sessionmaker[Session]]]:
    url = make_database(request.param)
    migrate.upgrade(url)
    engine = build_engine(url)
    yield url, build_sessionmaker(engine)
    engine.dispose()


def test_kill_9_mid_curtailment_loses_nothing_and_fires_nothing_twice(
    database: tuple[str, sessionmaker[Session]], tmp_path: Path
) -> None:
    url, factory = database
    with factory() as session:
        admin, _ = create_token(
            session, role=Role.ADMIN, name="ops", node_id=None, actor=SYSTEM, now=datetime.now(UTC)
        )
        session.commit()
    auth = {"Authorization": f"Bearer {admin}"}
    env = {
        **os.environ,
        "GRIDLINK_DATABASE_URL": url,
        "GRIDLINK_DATA_DIR": str(tmp_path),
        "GRIDLINK_LOG_LEVEL": "warning",
        "GRIDLINK_SCHEDULER_LEADER_RETRY_S": "0.5",
        "GRIDLINK_STREAM_HEARTBEAT_S": "1",
        "GRIDLINK_STREAM_RETRY_MS": "100",
        "GRIDLINK_FACILITY_MAX_KW": "100",
    }
    gateway = GatewayProcess(env, free_port(), tmp_path)
    follower: Follower | None = None
    try:
        first_pid = gateway.start()
        node = httpx.post(
            f"{gateway.base_url}/v1/nodes",
            headers=auth,
            json={
                "name": "node-a",
                "gpu_type": "H100-SXM",
                "gpu_count": 8,
                "gpu_min_cap_w": 200.0,
                "gpu_max_cap_w": 700.0,
                "idle_power_w": 400.0,
            },
            trust_env=False,
        )
        assert node.status_code in (200, 201), node.text
        node_id = node.json()["id"]
        with factory() as session:
            node_token, _ = create_token(
                session,
                role=Role.NODE,
                name="a",
                node_id=node_id,
                actor=SYSTEM,
                now=datetime.now(UTC),
            )
            session.commit()
        follower = Follower(gateway.base_url, node_id, node_token)
        follower.start()
        assert _wait(lambda: len(follower.updates) == 1, 10)
        unconstrained_w = follower.updates[0][1].trajectory.segments[0].power_w

        T = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        b1, b2 = T + timedelta(seconds=2), T + timedelta(seconds=5)
        b3, b4 = T + timedelta(seconds=8.5), T + timedelta(seconds=9.5)
        for start, end, limit_kw in ((b1, b2, 3.0), (b3, b4, 2.5)):
            body = {"start": start.isoformat(), "end": end.isoformat(), "limit_kw": limit_kw}
            created = httpx.post(
                f"{gateway.base_url}/v1/curtailments", headers=auth, json=body, trust_env=False
            )
            assert created.status_code == 201, created.text
        assert _wait(lambda: set(_jobs(factory)) == {b1, b2, b3, b4}, 10)
        assert _wait(lambda: len(follower.updates) >= 3, 10)  # each curtailment: a version
        held = follower.latest()
        assert held is not None
        assert held.power_at(b1 + timedelta(seconds=1)) == pytest.approx(3000.0, abs=1.0)
        assert held.power_at(b3 + timedelta(seconds=0.5)) == pytest.approx(2500.0, abs=1.0)

        # b1 fires live; then kill -9 in the middle of C1.
        assert _wait(lambda: _done(factory, b1), 10)
        _sleep_until(b1 + timedelta(seconds=0.5))
        gateway.kill9()
        killed_at = datetime.now(UTC)
        assert killed_at < b2, "the machine is too slow for this timeline"
        updates_before_kill = len(follower.updates)

        # b2 passes while nothing runs: nobody fires it.
        _sleep_until(b2 + timedelta(seconds=0.5))
        assert _jobs(factory)[b2].state == "pending"
        # The node keeps tracking the trajectory it holds: C1 has ended, full power is back.
        assert held.power_at(datetime.now(UTC)) == pytest.approx(unconstrained_w)

        second_pid = gateway.start()
        restarted_at = datetime.now(UTC)
        assert _wait(lambda: _done(factory, b2), 10)  # the catch-up

        # The stream resumed: a change made after the restart reaches the node.
        later = T + timedelta(minutes=5)
        body = {"start": later.isoformat(), "duration_s": 600, "limit_kw": 4.0}
        created = httpx.post(
            f"{gateway.base_url}/v1/curtailments", headers=auth, json=body, trust_env=False
        )
        assert created.status_code == 201, created.text
        assert _wait(lambda: len(follower.updates) > updates_before_kill, 10)

        assert _wait(lambda: _done(factory, b4), 15)
        time.sleep(0.5)
        served = httpx.get(
            f"{gateway.base_url}/v1/nodes/{node_id}/allocation",
            headers={"Authorization": f"Bearer {node_token}"},
            trust_env=False,
        ).json()
    finally:
        if follower is not None:
            follower.stop()
        gateway.stop()

    # -- the schedule: one row per boundary, each fired exactly once, by the right process --------
    jobs = _jobs(factory)
    fired = {due: job for due, job in jobs.items() if job.state == "done"}
    assert set(fired) == {b1, b2, b3, b4}
    assert all(job.state == "pending" for due, job in jobs.items() if due > b4)
    assert f":{first_pid}:" in (fired[b1].claimed_by or "")
    assert fired[b1].fired_at is not None and b1 <= fired[b1].fired_at < b1 + timedelta(seconds=2)
    catch_up_at = fired[b2].fired_at  # b2 passed while down: fired by the restart's catch-up
    assert catch_up_at is not None
    assert killed_at < catch_up_at < restarted_at + timedelta(seconds=5)
    for due in (b2, b3, b4):
        job = fired[due]
        assert f":{second_pid}:" in (job.claimed_by or "")
        if due <= catch_up_at:  # also due at start (b3 on a slow start): the same recompute
            assert job.fired_at == catch_up_at
        else:  # fired live, on time
            assert job.fired_at is not None and due <= job.fired_at < due + timedelta(seconds=2)

    # -- budget versions: a scheduled recompute creates at most one version per firing -----------
    with factory() as session:
        versions = list(session.scalars(select(BudgetVersion).order_by(BudgetVersion.id)))
    scheduled = [v for v in versions if v.reason.startswith("schedule:")]
    assert len(scheduled) <= 4
    versions_by_id = {v.id: v for v in versions}
    for job in fired.values():
        if job.budget_version_id is not None:
            assert versions_by_id[job.budget_version_id].reason.startswith("schedule:")

    # -- the stream: versions only move forward, nothing resent, the node ends where the API is --
    ids = [u.version_id for _, u in follower.updates]
    assert ids == [v.id for v in versions]  # each version delivered once, none resent
    assert ids[-1] == served["version_id"]
    final = follower.latest()
    assert final is not None
    assert any(at > restarted_at.timestamp() for at, _ in follower.updates)
    assert final.power_at(later + timedelta(seconds=1)) == pytest.approx(4000.0, abs=1.0)
    # What the node held while the gateway was down agrees with what is served now.
    probe = b4 + timedelta(seconds=30)
    assert held.power_at(probe) == final.power_at(probe) == pytest.approx(unconstrained_w)
