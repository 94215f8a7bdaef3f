"""The one place the experiments build simulated nodes (a thin edge over ``pals_core.sim``).

The offered load is set from the node's true saturated capacity, which only the experimenter
may read: ``rate_req_s = load_frac * capacity_tok_s / mean_output_tokens``. The experimenter also
knows the node's hardware, hence vLLM's default batch limit for it (stock's), and its SLO.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pals_core.clock import Clock
from pals_core.control.baselines import vllm_default_max_num_seqs
from pals_core.device.gpu import GPUGroup
from pals_core.engine.base import ServingEngine
from pals_core.experiments.scenarios import NodeConfig
from pals_core.experiments.slos import LatencySLO, latency_slo
from pals_core.model.profile import NodeIdentity

_CAPACITY_TOK_S: dict[tuple[NodeConfig, int, float, str, float, float], float] = {}
"""Saturated capacity per (node, seed, variation, physics), cached per process: the oracle's
search builds the same node dozens of times."""


@dataclass(slots=True)
class SimNodeHandle:
    node: Any
    """The simulator's node (kept opaque so controllers cannot be handed its internals)."""
    config: NodeConfig
    slo: LatencySLO
    capacity_tok_s: float
    offered_tok_s: float
    stock_batch: int
    """vLLM's default ``max_num_seqs`` on this hardware (stock's batch limit)."""

    @property
    def num_gpus(self) -> int:
        return self.config.num_gpus

    @property
    def itl_slo_s(self) -> float:
        return self.slo.tpot_p99_s

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

    @property
    def max_power_w(self) -> float:
        return sum(g.power_limit_constraints().max_w for g in self.gpus)

    @property
    def identity(self) -> NodeIdentity:
        """What a PALS profile must match to drive this node."""
        return NodeIdentity(self.gpus[0].name, self.config.num_gpus, self.config.model)


def node_handle(
    node: Any,
    config: NodeConfig,
    *,
    load_frac: float,
    capacity_tok_s: float,
    slo: LatencySLO,
    stock_batch: int,
) -> SimNodeHandle:
    """The handle over a built node (the simulator's or a test's fake)."""
    return SimNodeHandle(
        node=node,
        config=config,
        slo=slo,
        capacity_tok_s=capacity_tok_s,
        offered_tok_s=load_frac * capacity_tok_s,
        stock_batch=stock_batch,
    )


def build_node(
    config: NodeConfig,
    *,
    load_frac: float,
    seed: int,
    device_variation_frac: float = 0.0,
    noise_frac: float = 0.0,
    saturating: bool = False,
    physics: str = "nominal",
    slo: str = "relaxed",
    device_speed: float = 1.0,
    device_power: float = 1.0,
) -> SimNodeHandle:
    """A simulated node serving Poisson chat traffic at ``load_frac`` of its capacity (or, with
    ``saturating``, a queue kept full, for profiling), under the simulator's ``physics``. A
    ``device_speed`` or ``device_power`` other than 1 scales the device's compute and memory
    rates, or its power draw, against the catalog's (a device unlike the profiled one)."""
    from pals_core.sim import (
        PoissonWorkload,
        SaturatingWorkload,
        build_sim_node,
        gpu_spec,
        model_profile,
    )

    spec = gpu_spec(config.gpu)
    stock_batch = vllm_default_max_num_seqs(spec.product_name, spec.memory_bytes / 2**30)
    workload = SaturatingWorkload() if saturating else PoissonWorkload(rate_req_s=1.0)
    fit = None
    if (device_speed, device_power) != (1.0, 1.0):
        base = model_profile(config.model).deployment(config.gpu, config.num_gpus)
        fit = replace(
            base,
            eff_flops=base.eff_flops * device_speed,
            eff_bandwidth=base.eff_bandwidth * device_speed,
            static_w=base.static_w * device_power,
            mem_w=base.mem_w * device_power,
            comp_w=base.comp_w * device_power,
        )
    node = build_sim_node(
        model=config.model,
        gpu=config.gpu,
        num_gpus=config.num_gpus,
        workload=workload,
        seed=seed,
        device_variation_frac=device_variation_frac,
        noise_frac=noise_frac,
        batch_limit=stock_batch,
        physics=physics,
        fit=fit,
    )
    key = (config, seed, device_variation_frac, physics, device_speed, device_power)
    if key not in _CAPACITY_TOK_S:  # measuring it runs the node saturated: done once per node
        _CAPACITY_TOK_S[key] = float(node.max_throughput_tok_s())
    handle = node_handle(
        node,
        config,
        load_frac=load_frac,
        capacity_tok_s=_CAPACITY_TOK_S[key],
        slo=latency_slo(config.model, slo),
        stock_batch=stock_batch,
    )
    if not saturating:
        mean_output_tok = float(model_profile(config.model).chat_output_mean_tok)
        node.workload.set_rate(handle.offered_tok_s / mean_output_tok)
    return handle
