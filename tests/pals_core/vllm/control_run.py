"""The PALS controller driving a real vLLM through :func:`run_control_loop`, with GPUs from a
``pals sim-node`` (there is no GPU here) and a profile taken on a simulated GPU of that type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pals_core.clock import RealClock
from pals_core.control.policy import Policy
from pals_core.control.runtime import LoopConfig, Sample, run_control_loop
from pals_core.device.simnode import build_sim_node_gpu_group
from pals_core.engine.vllm import VLLMEngine
from pals_core.experiments.pals_adapter import build_pals
from pals_core.model import Profile
from pals_core.model.profile import NodeIdentity
from tests.pals_core.vllm.agent_run import NODE, write_profile
from tests.pals_core.vllm.load import BackgroundLoad

PROFILE_BATCHES = (1, 4, 8, 16, 32, 64, 128, 256)


def profile_pals(folder: Path, max_batch: int) -> Policy:
    """PALS on a profile swept on a simulated H100 (batches up to ``max_batch``)."""
    path = write_profile(folder / "profile.json", PROFILE_BATCHES)
    return build_pals(
        path,
        node=NodeIdentity(
            gpu_name=Profile.load(path).metadata.gpu_name, num_gpus=1, model=NODE.model
        ),
        itl_slo_s=0.1,
        overrides={"min_batch": 1, "default_batch": max_batch, "max_batch": max_batch},
    )


@dataclass
class ControlRun:
    samples: list[Sample]
    load: BackgroundLoad


def run_pals_against(
    engine: VLLMEngine, sim_node_url: str, policy: Policy, *, duration_s: float
) -> ControlRun:
    """Drive ``engine`` for ``duration_s`` while the offered load and the power budget move:
    light load unconstrained, then heavy load, then a tight budget."""
    third_s = duration_s / 3
    load = BackgroundLoad(engine.base_url, concurrency=2)
    samples: list[Sample] = []

    def budget_w(t: float) -> float | None:
        return None if t < 2 * third_s else 350.0

    def follow_schedule(sample: Sample) -> None:
        samples.append(sample)
        load.concurrency = 2 if sample.time_s < third_s else 24

    gpus = build_sim_node_gpu_group(sim_node_url)
    load.start()
    try:
        run_control_loop(
            policy,
            gpus,
            engine,
            RealClock(),
            duration_s=duration_s,
            budget_w=budget_w,
            config=LoopConfig(period_s=1.0, tick_s=0.5),
            on_sample=follow_schedule,
        )
    finally:
        load.stop()
        gpus.close()
    return ControlRun(samples, load)
