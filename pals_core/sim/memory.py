"""GPU memory left for the KV cache: what vLLM allocates after weights and activations.

vLLM reserves ``gpu_memory_utilization`` (0.9 by default) of each GPU's memory, loads the weights,
profiles the activations of a ``max_num_batched_tokens`` forward pass, and gives the rest to the
KV cache. The activation reserve is taken as 4 GiB per GPU (8192-token chunks; CUDA graphs and
the sampler included). A fitted KV capacity may be smaller than this (the cache limited the
measured batch sooner) but never larger: `tests/pals_core/sim/test_physical_sanity.py`.
"""

from __future__ import annotations

from pals_core.sim.hardware import GPUSpec
from pals_core.sim.models import ModelProfile

_GIB = 1024**3
GPU_MEMORY_UTILIZATION = 0.9
ACTIVATION_RESERVE_BYTES = 4 * _GIB


def kv_memory_bytes(profile: ModelProfile, spec: GPUSpec, num_gpus: int) -> float:
    """Bytes left for the KV cache on ``num_gpus`` GPUs of ``spec`` serving ``profile``."""
    return (
        GPU_MEMORY_UTILIZATION * spec.memory_bytes * num_gpus
        - profile.weight_bytes
        - ACTIVATION_RESERVE_BYTES * num_gpus
    )


def physical_kv_capacity_tokens(profile: ModelProfile, spec: GPUSpec, num_gpus: int) -> int:
    """The largest KV cache (tokens) the memory left after weights and activations holds."""
    return max(0, int(kv_memory_bytes(profile, spec, num_gpus) / profile.kv_bytes_per_token))
