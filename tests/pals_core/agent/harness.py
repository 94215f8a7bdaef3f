"""A simulated fleet in the test process, against a real gateway, with a monitor that records
what each node held (budget, allocation) every tick."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pals_core.agent.fleet import FleetOptions, build_fleet, parse_spec
from pals_core.agent.gateway import StreamEvent
from pals_core.agent.link import LinkConfig
from pals_core.agent.node import NodeControl, node_spec
from pals_core.agent.runner import Agent, ControlThread
from pals_core.agent.spool import TelemetrySpool
from pals_core.agent.telemetry import TelemetryRecorder
from pals_core.agent.trajectory import BudgetFollower, FollowerConfig
from pals_core.control.pals import PalsController
from pals_core.control.qos import QoSPolicy
from pals_core.sim import build_sim_node


@dataclass
class Reading:
    wall_s: float
    allocation_w: float | None
    budget_w: float
    source: str


@dataclass
class Fleet:
    agent: Agent
    nodes: list[NodeControl]
    spool: TelemetrySpool
    readings: dict[str, list[Reading]] = field(default_factory=dict)

    def wait(self, condition: object, timeout_s: float) -> bool:
        assert callable(condition)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return bool(condition())

    def allowed_w(self, name: str, second: int, grace_s: float = 2.0) -> float:
        """The loosest allocation the node held within ``grace_s`` before or during the second
        (no limit: the node's maximum power)."""
        max_w = next(n.spec.max_power_w for n in self.nodes if n.spec.name == name)
        values = [
            max_w if r.allocation_w is None else r.allocation_w
            for r in self.readings[name]
            if second - grace_s <= r.wall_s < second + 1
        ]
        return max(values, default=max_w)


@contextmanager
def running_fleet(
    spec: str,
    gateway_url: str,
    tokens: dict[str, str],
    folder: Path,
    *,
    lease_s: float = 60.0,
    profile_dir: Path | None = None,
) -> Iterator[Fleet]:
    options = FleetOptions(
        load_frac=0.7, lease_s=lease_s, profile_dir=profile_dir or folder / "profiles"
    )
    nodes, now_s = build_fleet(parse_spec(spec), options)
    spool = TelemetrySpool(folder / "spool.db")
    agent = Agent(
        nodes,
        gateway_url=gateway_url,
        tokens=lambda name: tokens[name],
        spool=spool,
        link_config=LinkConfig(heartbeat_s=5.0, telemetry_batch_s=1.0, max_backoff_s=1.0),
        control=ControlThread(
            nodes, options.loop.tick_s, now_s, counters_age_s=now_s.counters_age_s
        ),
    )
    fleet = Fleet(agent, nodes, spool, {n.spec.name: [] for n in nodes})
    stop = threading.Event()

    def monitor() -> None:
        while not stop.wait(0.1):
            now = time.time()
            for node in nodes:
                budget = node.status.budget
                if budget is not None:
                    fleet.readings[node.spec.name].append(
                        Reading(now, budget.allocation_w, budget.power_w, budget.source.value)
                    )

    watcher = threading.Thread(target=monitor, daemon=True)
    thread = agent.start_in_thread()
    watcher.start()
    try:
        yield fleet
    finally:
        agent.stop()
        thread.join(timeout=15)
        stop.set()
        watcher.join(timeout=5)
        spool.close()


def sim_node_control() -> NodeControl:
    """A 1-GPU simulated node under the controller's safe default (no profile)."""
    sim = build_sim_node("llama-3.1-8b", "H100-SXM", 1)
    spec = node_spec("n1", sim.gpus, None)
    qos = QoSPolicy(itl_p99_slo_s=0.1)
    return NodeControl(
        spec,
        sim.gpus,
        sim.engine,
        PalsController(None, num_gpus=1, qos=qos),
        BudgetFollower(FollowerConfig(spec.min_power_w, spec.max_power_w)),
        TelemetryRecorder(qos),
    )


def allocation_event(version: int, power_w: object) -> StreamEvent:
    """An allocation event for node 4: ``power_w`` for the next hour."""
    now = datetime.now(UTC)
    data = {
        "node_id": 4,
        "version_id": version,
        "created_at": now.isoformat(),
        "segments": [
            {
                "start": now.isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(),
                "power_w": power_w,
            }
        ],
    }
    return StreamEvent("allocation", json.dumps(data), str(version), None)
