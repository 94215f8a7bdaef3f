"""A simulated fleet for the ground-truth test: pals_core's calibrated simulator, run twice with the
same seeds (with and without the event), producing the telemetry a node agent would post.

Tests may import pals_core; gridlink itself never does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pals_core.sim import PoissonWorkload, SimClock, build_sim_node
from pals_core.sim.node import SimNode

MODEL = "llama-3.1-8b"
GPU = "H100-SXM"
STOCK_CAP_W = 700.0
RATE_STEP_S = 60


def _node(seed: int, clock: SimClock) -> SimNode:
    return build_sim_node(MODEL, GPU, 1, workload=PoissonWorkload(0.0), seed=seed, clock=clock)


def stock_curve(load_fracs: tuple[float, ...], *, seed: int = 100) -> list[list[float]]:
    """The node's profile at the stock configuration (maximum cap, default batch limit): mean
    power against served throughput at steady Poisson loads, ``[[throughput_tok_s, power_w]]``."""
    points = []
    for frac in load_fracs:
        clock = SimClock()
        node = _node(seed, clock)
        out_mean = node.model.chat_output_mean_tok
        node.workload.set_rate(frac * node.max_throughput_tok_s() / out_mean)
        clock.sleep(180.0)
        tokens0 = node.engine.metrics().generation_tokens_total
        energy0 = sum(node.gpus.get_energy_j())
        clock.sleep(600.0)
        tokens = node.engine.metrics().generation_tokens_total - tokens0
        energy = sum(node.gpus.get_energy_j()) - energy0
        points.append([tokens / 600.0, energy / 600.0])
    return sorted(points)


@dataclass
class FleetRun:
    """Per node: the samples it would post, and its energy (J) inside the event window."""

    samples: list[list[dict[str, Any]]] = field(default_factory=list)
    event_energy_j: list[float] = field(default_factory=list)


def run_fleet(
    seeds: tuple[int, ...],
    *,
    start: datetime,
    duration_s: int,
    load_frac: Callable[[float], float],
    event: tuple[int, int, float] | None,
    warmup_s: int = 120,
) -> FleetRun:
    """Simulate ``duration_s`` seconds from ``start`` (after a warm-up), one sample per node per
    second. ``load_frac(t)`` is the offered load as a fraction of capacity at ``t`` s from
    ``start``; ``event = (t0, t1, cap_w)`` caps every GPU at ``cap_w`` in ``[t0, t1)``."""
    clock = SimClock()
    nodes = [_node(seed, clock) for seed in seeds]
    capacity = [n.max_throughput_tok_s() for n in nodes]
    out_mean = nodes[0].model.chat_output_mean_tok
    run = FleetRun([[] for _ in nodes], [0.0 for _ in nodes])

    def set_load(t: float) -> None:
        for node, cap in zip(nodes, capacity, strict=True):
            node.workload.set_rate(load_frac(t) * cap / out_mean)

    set_load(0.0)
    clock.sleep(float(warmup_s))
    last = [(sum(n.gpus.get_energy_j()), n.engine.metrics()) for n in nodes]
    for t in range(duration_s):
        if t % RATE_STEP_S == 0:
            set_load(float(t))
        if event is not None and t in (event[0], event[1]):
            cap_w = event[2] if t == event[0] else STOCK_CAP_W
            for node in nodes:
                node.gpus.set_power_limit_w(0, cap_w)
        clock.sleep(1.0)
        at = start + timedelta(seconds=t)
        for i, node in enumerate(nodes):
            energy, metrics = sum(node.gpus.get_energy_j()), node.engine.metrics()
            energy0, metrics0 = last[i]
            last[i] = (energy, metrics)
            run.samples[i].append(
                {
                    "ts": at,
                    "power_w": energy - energy0,
                    "throughput_tok_s": float(
                        metrics.generation_tokens_total - metrics0.generation_tokens_total
                    ),
                    "demand_tok_s": float(
                        (metrics.requests_arrived_total - metrics0.requests_arrived_total)
                        * out_mean
                    ),
                    "qos_violation": metrics.num_requests_waiting > 0,
                }
            )
    return run


def energy_between(run: FleetRun, start: datetime, end: datetime) -> float:
    """The fleet's GPU energy (kWh) in ``[start, end)``, from the per-second samples."""
    joules = sum(s["power_w"] for node in run.samples for s in node if start <= s["ts"] < end)
    return joules / 3.6e6
