"""Shared by the controller benchmarks: a simulated node's profile over ``pals profile run``'s
default grid (geometric caps from the minimum to the maximum, the default batch limits)."""

from __future__ import annotations

from pals_core.model import Profile, ProfileMetadata, run_profile_sweep
from pals_core.model.cli import DEFAULT_BATCHES, default_caps_w
from pals_core.sim import SimNode


def profile_sim_node(
    node: SimNode, model: str, num_gpus: int, *, warmup_s: float, window_s: float
) -> Profile:
    """Sweep ``node`` (built with a saturating workload) over the default caps x batches."""
    limits = node.gpus[0].power_limit_constraints()
    return run_profile_sweep(
        node.gpus,
        node.engine,
        node.clock,
        caps_w=default_caps_w(limits.min_w, limits.max_w),
        batches=DEFAULT_BATCHES,
        warmup_s=warmup_s,
        window_s=window_s,
        metadata=ProfileMetadata(node.gpus[0].name, num_gpus, model, num_gpus),
    )
