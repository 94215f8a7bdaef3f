"""A simulated fleet for the browser tests: pals_core simulated nodes (a saturating load) that
register with a live gateway, follow their allocations (power cap = allocation) and post
telemetry, in real time, from a thread.

When ``pals fleet --gateway URL --nodes SPEC`` (the agent issue) lands, the ``sim_fleet``
fixture can run that command instead; this helper only uses the public REST API, as it will.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from pals_core.sim.clock import SimClock
from pals_core.sim.node import SimNode, build_sim_node
from pals_core.sim.workload import SaturatingWorkload


@dataclass
class FleetNode:
    name: str
    sim: SimNode
    clock: SimClock
    node_id: int = 0
    energy_j: float = 0.0
    tokens: float = 0.0
    power_w: list[float] = field(default_factory=list)


def _current_allocation_w(client: httpx.Client, node_id: int) -> float | None:
    segments = client.get(f"/v1/nodes/{node_id}/allocation").json().get("segments", [])
    now = datetime.now(UTC)
    for seg in segments:
        if datetime.fromisoformat(seg["start"]) <= now < datetime.fromisoformat(seg["end"]):
            return float(seg["power_w"])
    return None


class SimFleet:
    def __init__(self, base_url: str, token: str, *, nodes: int, period_s: float = 1.0) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        self.period_s = period_s
        self.nodes = []
        for i in range(nodes):
            clock = SimClock()
            sim = build_sim_node(workload=SaturatingWorkload(), clock=clock, seed=i)
            self.nodes.append(FleetNode(f"sim-{i:03d}", sim, clock))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-fleet", daemon=True)
        self.ticks = 0

    def register(self) -> None:
        for node in self.nodes:
            limits = node.sim.gpus[0].power_limit_constraints()
            body = {
                "name": node.name,
                "gpu_type": node.sim.gpu_spec.name,
                "gpu_count": node.sim.num_gpus,
                "gpu_min_cap_w": limits.min_w,
                "gpu_max_cap_w": limits.max_w,
            }
            response = self.client.post("/v1/nodes", json=body)
            response.raise_for_status()
            node.node_id = response.json()["id"]

    def _step(self, node: FleetNode, dt_s: float) -> None:
        gpus = node.sim.gpus
        alloc_w = _current_allocation_w(self.client, node.node_id)
        limits = gpus[0].power_limit_constraints()
        per_gpu = limits.max_w if alloc_w is None else alloc_w / node.sim.num_gpus
        for i in range(len(gpus)):
            gpus.set_power_limit_w(i, limits.clamp(per_gpu))
        node.clock.advance_to(node.clock.now_s() + dt_s)
        energy = sum(gpus.get_energy_j())
        tokens = node.sim.engine.metrics().generation_tokens_total
        power_w = (energy - node.energy_j) / dt_s
        tput = (tokens - node.tokens) / dt_s
        node.energy_j, node.tokens = energy, tokens
        node.power_w.append(power_w)
        sample = {
            "ts": datetime.now(UTC).isoformat(),
            "power_w": power_w,
            "throughput_tok_s": tput,
            "power_cap_w": per_gpu * node.sim.num_gpus,
            "batch_limit": node.sim.engine.get_batch_limit(),
        }
        self.client.post(
            f"/v1/nodes/{node.node_id}/telemetry", json={"samples": [sample]}
        ).raise_for_status()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.period_s):
            now = time.monotonic()
            dt_s, last = now - last, now
            for node in self.nodes:
                self._step(node, dt_s)
            self.ticks += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.close()


@contextmanager
def sim_fleet(base_url: str, token: str, *, nodes: int) -> Iterator[SimFleet]:
    fleet = SimFleet(base_url, token, nodes=nodes)
    fleet.register()
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()
