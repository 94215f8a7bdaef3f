"""Curtailment latency: from the POST of a curtailment that takes effect at once to every node's
measured GPU power being under its new allocation.

N simulated nodes (real agents in this process) follow a gateway subprocess on PostgreSQL. Each
trial POSTs an immediate curtailment that binds (the fleet's minimum plus a share of the room
above it), then watches every node (every 10 ms): done when each node holds the new budget
version and its measured power (the sum of its GPUs' readings) is at or under its allocation.
The curtailment is then cancelled and the fleet given time to recover before the next trial.

    .venv/bin/python benchmarks/curtailment_latency.py [--nodes 50] [--trials 20]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import httpx

from benchmarks._fleet import running_fleet, wait_online
from benchmarks._harness import (
    admin_token,
    gateway_process,
    load_average,
    percentile,
    scratch_database,
)
from pals_core.agent.node import NodeControl


def _holds_new(node: NodeControl, version_before: int) -> bool:
    return node.status.version_id is not None and node.status.version_id > version_before


def _under(node: NodeControl) -> bool:
    budget = node.status.budget
    return (
        budget is not None
        and budget.allocation_w is not None
        and node.status.power_w <= budget.allocation_w
    )


def trial(
    client: httpx.Client, nodes: list[NodeControl], limit_w: float, timeout_s: float
) -> tuple[float, float]:
    """``(delivered_s, under_s)``: every node holds the new version / is under it."""
    before = {n.spec.name: n.status.version_id or 0 for n in nodes}
    body = {"start": datetime.now(UTC).isoformat(), "duration_s": 3600, "limit_kw": limit_w / 1000}
    start = time.monotonic()
    answer = client.post("/v1/curtailments", json=body)
    answer.raise_for_status()
    waiting, pending = list(nodes), list(nodes)
    delivered_s = under_s = float("inf")
    while pending and time.monotonic() - start < timeout_s:
        waiting = [n for n in waiting if not _holds_new(n, before[n.spec.name])]
        if not waiting and delivered_s == float("inf"):
            delivered_s = time.monotonic() - start
        pending = [n for n in pending if not (_holds_new(n, before[n.spec.name]) and _under(n))]
        time.sleep(0.01)
    if not pending:
        under_s = time.monotonic() - start
    client.delete(f"/v1/curtailments/{answer.json()['id']}").raise_for_status()
    return min(delivered_s, under_s), under_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--recover-s", type=float, default=6.0)
    args = parser.parse_args()
    with (
        scratch_database("curtail_latency") as url,
        gateway_process(url, GRIDLINK_FACILITY_MAX_KW="1000") as gateway,
    ):
        token = admin_token(url)
        auth = {"Authorization": f"Bearer {token}"}
        with (
            running_fleet(str(args.nodes), gateway.base_url, token) as agent,
            httpx.Client(base_url=gateway.base_url, headers=auth, trust_env=False) as client,
        ):
            wait_online(agent)
            time.sleep(35)  # past the controllers' warm-up
            nodes = list(agent.nodes)
            min_w = sum(n.spec.min_power_w for n in nodes)
            latencies, deliveries = [], []
            for i in range(args.trials):
                power_w = sum(n.status.power_w for n in nodes)
                limit_w = min_w + (0.6 if i % 2 else 0.5) * max(0.0, power_w - min_w)
                delivered_s, under_s = trial(client, nodes, limit_w, timeout_s=30.0)
                latencies.append(under_s)
                deliveries.append(delivered_s)
                print(
                    f"trial {i + 1:2d}: fleet {power_w / 1000:6.1f} kW -> limit "
                    f"{limit_w / 1000:6.1f} kW: every node holds it after {delivered_s:.3f} s, "
                    f"is under it after {under_s:.3f} s",
                    flush=True,
                )
                time.sleep(args.recover_s)
    print(f"nodes {args.nodes}, trials {args.trials} (load average {load_average()})")
    print(
        f"delivered to every node p50 {percentile(deliveries, 50):.3f} s, "
        f"p99 {percentile(deliveries, 99):.3f} s"
    )
    print(f"latency p50 {percentile(latencies, 50):.3f} s")
    print(f"latency p99 {percentile(latencies, 99):.3f} s (goal <= 2 s)")
    print(f"latency max {max(latencies):.3f} s")


if __name__ == "__main__":
    main()
