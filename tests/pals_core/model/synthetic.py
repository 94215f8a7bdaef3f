"""A small, physically shaped stand-in for a node's saturated curves (for model unit tests).

Decode step time = weights pass (memory-bound, clock-insensitive) + per-sequence compute that
slows with the clock; the clock falls when the power the batch wants exceeds the cap.
"""

from __future__ import annotations

from pals_core.model.profile import Profile, ProfileMetadata, ProfilePoint

IDLE_W = 90.0
MAX_CAP_W = 700.0


def saturated(cap_w: float, batch: int, speed: float = 1.0) -> ProfilePoint:
    want_w = IDLE_W + 330.0 * (batch / (batch + 40.0)) + 250.0 * (batch / (batch + 300.0))
    clock = min(1.0, ((cap_w - IDLE_W) / (want_w - IDLE_W)) ** 0.55)
    power_w = min(want_w, cap_w * 0.985)
    step_s = (0.006 + 0.00012 * batch / clock) / speed
    itl_p50_s = step_s
    return ProfilePoint(
        cap_w=cap_w,
        batch=batch,
        throughput_tok_s=batch / step_s * 0.97,
        power_w=power_w,
        power_per_gpu_w=(power_w,),
        itl_p50_s=itl_p50_s,
        itl_p99_s=itl_p50_s * 2.2,
        ttft_p99_s=0.5,
        mean_running=float(batch),
        saturated=True,
    )


def synthetic_profile(
    caps_w: tuple[float, ...] = (200.0, 300.0, 400.0, 550.0, 700.0),
    batches: tuple[int, ...] = (8, 16, 32, 64, 128, 256),
) -> Profile:
    meta = ProfileMetadata(gpu_name="H100-SXM", num_gpus=1, model="llama-3.1-8b", tensor_parallel=1)
    return Profile(meta, tuple(saturated(c, b) for c in caps_w for b in batches))
