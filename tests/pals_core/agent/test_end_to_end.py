"""End to end: a real gateway subprocess, simulated nodes under real agents, curtailments through
the API, the gateway SIGKILLed mid-event, and the lease.

The curtailment test (PostgreSQL): 4 nodes (dense and MoE, 1 to 4 GPUs) enrolled with one node
token each. An immediate curtailment, then one starting 20 s later: every node's measured power
(the per-second telemetry in the database) is under its allocation from 2 s after the immediate
boundary (and after any later change of its allocation: the gateway re-shares the budget), and
from the first second of the later one (it was known ahead), to the end; the facility's summed
power stays under the GPU budget x 1.01. Then the gateway is killed (SIGKILL) for 30 s: the
nodes keep following the trajectory they hold, and after the restart the database holds every
second of telemetry of every node exactly once.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gridlink.auth.principal import SYSTEM
from gridlink.auth.service import create_token, enrol_node
from gridlink.db import migrate
from gridlink.db.engine import build_engine, build_sessionmaker
from gridlink.models import Role
from gridlink.models.telemetry import TelemetrySample
from tests.gridlink.live import free_port
from tests.gridlink.test_restart import GatewayProcess
from tests.pals_core.agent.harness import Fleet, running_fleet

pytestmark = pytest.mark.slow

SPEC = "llama-3.1-8b@1,qwen3-30b-a3b@2,llama-3.1-70b@4,qwen3-30b-a3b@1"
NAMES = [f"sim-{i:03d}" for i in range(1, 5)]


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet-profiles")


def _gateway_env(url: str, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GRIDLINK_DATABASE_URL": url,
        "GRIDLINK_DATA_DIR": str(folder),
        "GRIDLINK_LOG_LEVEL": "warning",
        "GRIDLINK_SCHEDULER_LEADER_RETRY_S": "0.5",
        "GRIDLINK_STREAM_HEARTBEAT_S": "1",
        "GRIDLINK_STREAM_RETRY_MS": "100",
        "GRIDLINK_FACILITY_MAX_KW": "100",
    }


def _setup(
    make_database: Callable[[str], str], backend: str, names: list[str]
) -> tuple[str, sessionmaker[Session], str, dict[str, str]]:
    """A migrated database, an admin token and one enrolment token per node."""
    url = make_database(backend)
    migrate.upgrade(url)
    factory = build_sessionmaker(build_engine(url))
    now = datetime.now(UTC)
    with factory() as session:
        admin, _ = create_token(
            session, role=Role.ADMIN, name="ops", node_id=None, actor=SYSTEM, now=now
        )
        tokens = {n: enrol_node(session, name=n, actor=SYSTEM, now=now)[0] for n in names}
        session.commit()
    return url, factory, admin, tokens


def _curtail(base_url: str, admin: str, start: datetime, limit_w: float) -> None:
    body = {"start": start.isoformat(), "duration_s": 600, "limit_kw": limit_w / 1000}
    answer = httpx.post(
        f"{base_url}/v1/curtailments",
        headers={"Authorization": f"Bearer {admin}"},
        json=body,
        trust_env=False,
    )
    assert answer.status_code == 201, answer.text


def _samples(factory: sessionmaker[Session]) -> dict[int, list[TelemetrySample]]:
    out: dict[int, list[TelemetrySample]] = {}
    with factory() as session:
        for row in session.scalars(select(TelemetrySample).order_by(TelemetrySample.ts)):
            out.setdefault(row.node_id, []).append(row)
    return out


def _newest_s(factory: sessionmaker[Session], node_ids: Iterable[int | None]) -> float:
    """The oldest of the nodes' newest sample times (0 while a node has none)."""
    with factory() as session:
        newest = [
            session.scalar(select(func.max(TelemetrySample.ts)).where(TelemetrySample.node_id == i))
            for i in node_ids
        ]
    return min((ts.timestamp() if ts is not None else 0.0) for ts in newest)


def _mean_power_w(fleet: Fleet, duration_s: float) -> float:
    """The fleet's measured GPU power, averaged over ``duration_s``."""
    readings = []
    for _ in range(int(duration_s / 0.1)):
        readings.append(sum(n.status.power_w for n in fleet.nodes))
        time.sleep(0.1)
    return sum(readings) / len(readings)


def _online(fleet: Fleet) -> bool:
    return all(n.status.version_id is not None and n.status.stream_connected for n in fleet.nodes)


def test_curtailments_are_followed_through_a_gateway_kill(
    make_database: Callable[[str], str], tmp_path: Path, profile_dir: Path
) -> None:
    pytest.importorskip("psycopg")
    url, factory, admin, tokens = _setup(make_database, "postgresql", NAMES)
    gateway = GatewayProcess(_gateway_env(url, tmp_path), free_port(), tmp_path)
    gateway.start()
    try:
        with running_fleet(
            SPEC, gateway.base_url, tokens, tmp_path, profile_dir=profile_dir
        ) as fleet:
            assert fleet.wait(lambda: _online(fleet), 30), "the fleet did not come online"
            power_w = _mean_power_w(fleet, 3.0)
            min_w = sum(n.spec.min_power_w for n in fleet.nodes)
            # Both bind: half, then a third, of the room the fleet uses above its minimum.
            limits = (min_w + 0.5 * (power_w - min_w), min_w + 0.33 * (power_w - min_w))
            b1 = datetime.now(UTC)
            _curtail(gateway.base_url, admin, b1, limits[0])
            b2 = b1 + timedelta(seconds=20)
            _curtail(gateway.base_url, admin, b2, limits[1])
            # The later fall is in the trajectory every node holds, 20 s ahead.
            time.sleep((b2 - datetime.now(UTC)).total_seconds() + 6)

            gateway.kill9()
            killed = time.time()
            time.sleep(30)
            during = {n.spec.name: n.status.budget for n in fleet.nodes}
            gateway.start()
            restarted = time.time()
            id_of = {n.spec.name: n.node_id for n in fleet.nodes}
            # Replayed, and live again: every node's samples reach past the restart (the newest
            # seconds are still in flight when the spool first reads empty).
            assert fleet.wait(
                lambda: (
                    all(fleet.spool.count(n) == 0 for n in NAMES)
                    and _newest_s(factory, id_of.values()) > restarted + 3
                ),
                60,
            ), "the spooled telemetry was not replayed"
    finally:
        gateway.stop()

    # -- gateway gone: the nodes kept following the trajectory they held -------------------------
    for name, budget in during.items():
        assert budget is not None and budget.source.value == "trajectory", name
        assert budget.allocation_w is not None
    assert all(
        r.source == "trajectory"
        for name in NAMES
        for r in fleet.readings[name]
        if killed <= r.wall_s <= restarted
    )

    samples = _samples(factory)
    b1_s, b2_s = b1.timestamp(), b2.timestamp()
    for name in NAMES:
        rows = samples[id_of[name]]  # type: ignore[index]
        seconds = [int(r.ts.timestamp()) for r in rows]
        # -- every second, exactly once, across the kill ------------------------------------------
        assert len({r.sample_id for r in rows}) == len(rows)
        assert seconds == list(range(seconds[0], seconds[-1] + 1)), f"{name}: a second is missing"
        assert seconds[0] < b1_s - 3 and seconds[-1] > restarted + 2
        # -- under the allocation from 2 s after the immediate boundary (and 2 s after any change
        # of the allocation), from the first whole second of the one known 20 s ahead (met on
        # time), to the end, through the kill -------------------------------------------------
        for row, second in zip(rows, seconds, strict=True):
            if math.ceil(b2_s) <= second < b2_s + 6:
                allowed = fleet.allowed_w(name, second, grace_s=-0.5)
            elif second >= b1_s + 2:
                allowed = fleet.allowed_w(name, second)
            else:
                continue
            assert row.power_w <= allowed, (name, second - b1_s, row.power_w, allowed)

    # -- the facility under the GPU budget x 1.01 once settled -------------------------------------
    by_second: dict[int, float] = {}
    counts: dict[int, int] = {}
    for rows in samples.values():
        for row in rows:
            second = int(row.ts.timestamp())
            by_second[second] = by_second.get(second, 0.0) + row.power_w
            counts[second] = counts.get(second, 0) + 1
    before = [w for s, w in by_second.items() if b1_s - 4 <= s < b1_s - 1 and counts[s] == 4]
    assert before and sum(before) / len(before) > limits[0], "the curtailment did not bind"
    for second, total_w in by_second.items():
        if counts[second] < len(NAMES) or second < b1_s + 2:
            continue
        budget_w = limits[1] if second >= b2_s else limits[0]
        assert total_w <= budget_w * 1.01, (second, total_w, budget_w)


def test_lease_failsafe_then_resume(
    make_database: Callable[[str], str], tmp_path: Path, profile_dir: Path
) -> None:
    names = ["sim-001"]
    url, _factory, admin, tokens = _setup(make_database, "sqlite", names)
    gateway = GatewayProcess(_gateway_env(url, tmp_path), free_port(), tmp_path)
    gateway.start()
    try:
        with running_fleet(
            "llama-3.1-8b@1",
            gateway.base_url,
            tokens,
            tmp_path,
            lease_s=3.0,
            profile_dir=profile_dir,
        ) as fleet:
            node = fleet.nodes[0]
            assert fleet.wait(lambda: _online(fleet), 30)
            limit_w = node.spec.min_power_w + 250.0
            _curtail(gateway.base_url, admin, datetime.now(UTC), limit_w)
            assert fleet.wait(
                lambda: (
                    node.status.budget is not None
                    and node.status.budget.allocation_w == pytest.approx(limit_w)
                ),
                10,
            )
            time.sleep(1.5)
            held = node.status.budget
            assert held is not None and held.source.value == "trajectory"
            gateway.kill9()
            assert fleet.wait(
                lambda: (
                    node.status.budget is not None and node.status.budget.source.value == "failsafe"
                ),
                8,
            ), "no failsafe after the lease"
            failsafe = node.status.budget
            assert failsafe is not None and failsafe.power_w <= held.power_w
            assert failsafe.power_w == node.spec.min_power_w  # the default failsafe
            gateway.start()
            back = time.time()
            assert fleet.wait(
                lambda: (
                    node.status.budget is not None
                    and node.status.budget.source.value == "trajectory"
                ),
                15,
            ), "the trajectory did not resume"
            assert fleet.wait(
                lambda: (
                    node.status.budget is not None
                    and node.status.budget.power_w >= held.power_w - 1.0
                ),
                30,
            ), "the budget did not climb back"
            final = node.status.budget
    finally:
        gateway.stop()
    resumed = [r for r in fleet.readings["sim-001"] if r.wall_s >= back - 1]
    ramp_w_per_s = (node.spec.max_power_w - node.spec.min_power_w) / 20
    for a, b in itertools.pairwise(resumed):  # at most the ramp over the time between readings
        assert b.budget_w - a.budget_w <= ramp_w_per_s * (b.wall_s - a.wall_s + 0.2), "a jump"
    assert final is not None and final.power_w == pytest.approx(held.power_w, abs=1.0)


def test_demand_and_stock_curve_are_stored(
    make_database: Callable[[str], str], tmp_path: Path, profile_dir: Path
) -> None:
    """What the audit reports' model counterfactual needs, from agent to database: each node's
    stock curve (registration) and the offered load of every telemetry second."""
    from gridlink.models.node import Node
    from gridlink.reports.baselines import validate_stock_curve

    pytest.importorskip("psycopg")
    names = NAMES[:2]
    url, factory, _admin, tokens = _setup(make_database, "postgresql", names)
    gateway = GatewayProcess(_gateway_env(url, tmp_path), free_port(), tmp_path)
    gateway.start()
    try:
        with running_fleet(
            "llama-3.1-8b@1,qwen3-30b-a3b@2",
            gateway.base_url,
            tokens,
            tmp_path,
            profile_dir=profile_dir,
        ) as fleet:
            assert fleet.wait(lambda: _online(fleet), 30), "the fleet did not come online"
            sent = {n.spec.name: n.spec.stock_curve for n in fleet.nodes}
            ids = {n.spec.name: n.node_id for n in fleet.nodes}
            time.sleep(12)
            assert fleet.wait(lambda: all(fleet.spool.count(n) == 0 for n in names), 10)
    finally:
        gateway.stop()
    samples = _samples(factory)
    with factory() as session:
        for name in names:
            node = session.get(Node, ids[name])
            assert node is not None and node.stock_curve is not None, name
            assert [tuple(p) for p in node.stock_curve] == [tuple(p) for p in sent[name]]
            assert len(validate_stock_curve(node.stock_curve, "stock_curve")) >= 6
            rows = samples[ids[name]]  # type: ignore[index]
            assert len(rows) >= 10 and all(r.demand_tok_s is not None for r in rows), name
            served = sum(r.throughput_tok_s for r in rows[2:])
            asked = sum(r.demand_tok_s or 0.0 for r in rows[2:])
            # unconstrained at 70 % load: the node serves what it is asked (queue steady)
            assert 0.7 * served <= asked <= 1.5 * served, (name, served, asked)
