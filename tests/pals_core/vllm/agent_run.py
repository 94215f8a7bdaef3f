"""The node agent's control side against a real vLLM: the node ``pals agent --gpus sim-node
--sim-node-url URL`` builds (``_real_node``: PALS on the node's profile, the budget follower,
``VLLMEngine`` on the plugin's channel), ticked by the agent's ``ControlThread``, following a
budget trajectory as the gateway's stream would hand it over."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from pals_core.agent.cli import _real_node
from pals_core.agent.node import NodeControl
from pals_core.agent.runner import ControlThread
from pals_core.agent.trajectory import Segment, Trajectory
from pals_core.experiments.scenarios import NodeConfig
from pals_core.experiments.simnode import build_node
from pals_core.model import ProfileMetadata, run_profile_sweep
from pals_core.settings import PalsSettings
from tests.pals_core.vllm.load import BackgroundLoad

NODE = NodeConfig("llama-3.1-8b", "H100-SXM", 1)  # what `pals sim-node` serves in the fixture


def write_profile(path: Path, batches: tuple[int, ...]) -> Path:
    """The node's profile, swept on a simulated H100 (there is no GPU here)."""
    handle = build_node(NODE, load_frac=1.0, seed=7, saturating=True)
    gpu = handle.gpus[0]
    limits = gpu.power_limit_constraints()
    profile = run_profile_sweep(
        handle.gpus,
        handle.engine,
        handle.clock,
        caps_w=sorted({max(limits.min_w, f * limits.max_w) for f in (0.4, 0.6, 0.8, 1.0)}),
        batches=list(batches),
        warmup_s=2.0,
        window_s=4.0,
        metadata=ProfileMetadata(
            gpu_name=gpu.name,
            num_gpus=1,
            model=NODE.model,
            tensor_parallel=1,
            engine="vllm-sim",
            notes="test profile",
        ),
    )
    profile.save(path)
    return path


@dataclass
class AgentRun:
    node: NodeControl
    load: BackgroundLoad
    ticks: list[tuple[float, int, float]] = field(default_factory=list)
    """(monotonic s, batch limit the node holds, budget W) every tick of the watcher."""


def run_agent_node(
    engine_url: str,
    control: str,
    sim_node_url: str,
    profile: Path,
    data_dir: Path,
    *,
    duration_s: float,
    budget_w: float,
    loads: tuple[int, int] = (2, 24),
) -> AgentRun:
    """A third of ``duration_s`` under light load and no limit, then heavy load and
    ``budget_w`` from a trajectory (version 1) handed to the node as the gateway's stream
    would."""
    settings = PalsSettings(
        engine_url=engine_url, vllm_control=control, data_dir=data_dir, control_period_s=0.5
    )
    node = _real_node(settings, "vllm-node", "sim-node", profile, sim_node_url=sim_node_url)
    now = time.time()
    light_s = duration_s / 3
    node.accept_trajectory(
        Trajectory(
            1,
            (
                Segment(now - 1, now + light_s, None),
                Segment(now + light_s, now + 3600, budget_w),
            ),
        ),
        now,
    )
    load = BackgroundLoad(engine_url, concurrency=loads[0])
    run = AgentRun(node, load)
    thread = ControlThread([node], node.config.tick_s, time.monotonic)
    load.start()
    thread.start()
    start_s = time.monotonic()
    try:
        while (elapsed_s := time.monotonic() - start_s) < duration_s:
            load.concurrency = loads[0] if elapsed_s < light_s else loads[1]
            budget = node.status.budget
            run.ticks.append(
                (time.monotonic(), node.status.batch_limit, budget.power_w if budget else 0.0)
            )
            time.sleep(0.1)
    finally:
        thread.stop()
        load.stop()
        node.gpus.close()
    return run
