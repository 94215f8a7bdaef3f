"""The agent's /metrics: every node's budget, power, caps, mode, stream and buffer state."""

from __future__ import annotations

import json
import time

import httpx

from pals_core.agent.metrics import serve_metrics
from pals_core.agent.spool import TelemetrySpool
from pals_core.agent.trajectory import parse_trajectory
from tests.pals_core.agent.harness import allocation_event, sim_node_control


def test_metrics_show_eachsim_node_control() -> None:
    node = sim_node_control()
    node.node_id = 4
    event = allocation_event(3, 400.0)
    node.accept_trajectory(parse_trajectory(json.loads(event.data), 4), time.time())
    for i in range(12):
        node.tick(i * 0.1, time.time())
    spool = TelemetrySpool(":memory:")
    port = serve_metrics(lambda: [node], spool, "127.0.0.1", 0)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False).text
    assert 'pals_agent_budget_watts{node="n1"} 400.0' in text
    assert 'pals_agent_allocation_watts{node="n1"} 400.0' in text
    assert 'pals_agent_trajectory_version{node="n1"} 3.0' in text
    assert 'pals_agent_power_cap_watts{gpu="0",node="n1"}' in text
    assert 'pals_agent_mode{mode="safe_default",node="n1"} 1.0' in text
    for name in ("stream_connected", "buffered_samples", "dropped_samples_total", "batch_limit"):
        assert f"pals_agent_{name}{{" in text
