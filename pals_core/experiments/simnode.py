"""The one place the experiments build simulated nodes (a thin edge over ``pals_core.sim``).

The offered load is set from the node's true saturated capacity, which only the experimenter
may read: ``rate_req_s = load_frac * capacity_tok_s / mean_output_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pals_core.clock import Clock
from pals_core.device.gpu import GPUGroup
from pals_core.engine.base import ServingEngine
from pals_core.experiments.scenarios import NodeConfig

_CAPACITY_TOK_S: dict[tuple[NodeConfig, int, float], float] = {}
"""Saturated capacity per (node, seed, variation), cached per process: the oracle's search builds
the same node dozens of times."""


@dataclass(slots=True)
class SimNodeHandle:
    node: Any
    """The simulator's node (kept opaque so controllers cannot be handed its internals)."""
    num_gpus: int
    itl_slo_s: float
    capacity_tok_s: float
    offered_tok_s: float
    max_power_w: float

    @property
    def gpus(self) -> GPUGroup:
        gpus: GPUGroup = self.node.gpus
        return gpus

    @property
    def engine(self) -> ServingEngine:
        engine: ServingEngine = self.node.engine
        return engine

    @property
    def clock(self) -> Clock:
        clock: Clock = self.node.clock
        return clock


def build_node(
    config: NodeConfig,
    *,
    load_frac: float,
    seed: int,
    device_variation_frac: float = 0.0,
    noise_frac: float = 0.0,
    saturating: bool = False,
) -> SimNodeHandle:
    """A simulated node serving Poisson chat traffic at ``load_frac`` of its capacity (or, with
    ``saturating``, a queue kept full, for profiling)."""
    from pals_core.sim import PoissonWorkload, SaturatingWorkload, build_sim_node, model_profile

    workload = SaturatingWorkload() if saturating else PoissonWorkload(rate_req_s=1.0)
    node = build_sim_node(
        model=config.model,
        gpu=config.gpu,
        num_gpus=config.num_gpus,
        workload=workload,
        seed=seed,
        device_variation_frac=device_variation_frac,
        noise_frac=noise_frac,
        batch_limit=256,
    )
    profile = model_profile(config.model)
    key = (config, seed, device_variation_frac)
    if key not in _CAPACITY_TOK_S:  # measuring it runs the node saturated: done once per node
        _CAPACITY_TOK_S[key] = float(node.max_throughput_tok_s())
    capacity_tok_s = _CAPACITY_TOK_S[key]
    offered_tok_s = load_frac * capacity_tok_s
    if not saturating:
        node.workload.set_rate(offered_tok_s / float(profile.chat_output_mean_tok))
    max_power_w = sum(g.power_limit_constraints().max_w for g in node.gpus)
    return SimNodeHandle(
        node=node,
        num_gpus=config.num_gpus,
        itl_slo_s=float(profile.default_itl_p99_slo_s),
        capacity_tok_s=capacity_tok_s,
        offered_tok_s=offered_tok_s,
        max_power_w=max_power_w,
    )
