"""Measure a profile: sweep power caps x batch limits under a saturating load.

The sweep touches the node only through the :class:`~pals_core.device.gpu.GPUGroup`, the
:class:`~pals_core.engine.base.ServingEngine` and the injected clock, so the same code profiles a
simulated node (whose own workload, e.g. ``SaturatingWorkload``, keeps the queue full) and a real
one. **Loading a real node:** start vLLM with ``--max-num-seqs`` at least the largest batch swept
and drive it with a closed-loop client that always keeps more requests outstanding than that batch
(e.g. ``vllm bench serve --request-rate inf --max-concurrency <2 x largest batch>`` on the
production prompt mix). A point is marked ``saturated=False`` when its queue ran empty, so a weak
load generator is visible in the profile instead of silently bending the curves.

For each point: set the caps and the batch limit, wait ``warmup_s`` (the running batch refills and
clocks settle), then measure over ``window_s``: throughput from ``generation_tokens_total``, power
from the energy counters (exact averages, no sampling error), ITL and TTFT quantiles from histogram
deltas, and the running batch sampled every ``sample_s``. Caps go from high to low, batches in a
snake order (up at one cap, down at the next) so the batch never drops from the largest to the
smallest; after a lower limit the sweep first waits for the running batch to drain below it. The
original caps and batch limit are restored at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from pals_core.clock import Clock
from pals_core.device.gpu import GPUGroup
from pals_core.engine.base import ServingEngine
from pals_core.errors import ConfigurationError
from pals_core.model.profile import Profile, ProfileMetadata, ProfilePoint

ProgressCallback = Callable[[int, int, ProfilePoint], None]
"""Called after each point with (points done, points total, the point)."""


def _validate(caps_w: Sequence[float], batches: Sequence[int], gpus: GPUGroup) -> None:
    if not caps_w:
        raise ConfigurationError("caps_w must list at least one power cap")
    if not batches or any(int(b) < 1 for b in batches):
        raise ConfigurationError("batches must list batch limits >= 1")
    for gpu in gpus:
        limits = gpu.power_limit_constraints()
        for cap in caps_w:
            if not limits.min_w <= cap <= limits.max_w:
                raise ConfigurationError(
                    f"caps_w value {cap} W is outside GPU {gpu.index}'s allowed range "
                    f"[{limits.min_w}, {limits.max_w}] W"
                )


def run_profile_sweep(
    gpus: GPUGroup,
    engine: ServingEngine,
    clock: Clock,
    *,
    caps_w: Sequence[float],
    batches: Sequence[int],
    warmup_s: float = 10.0,
    window_s: float = 20.0,
    metadata: ProfileMetadata,
    progress: ProgressCallback | None = None,
    sample_s: float = 0.5,
    drain_timeout_s: float = 120.0,
) -> Profile:
    """Sweep every (cap, batch) pair and return the :class:`Profile` (caps are per GPU)."""
    if warmup_s < 0 or window_s <= 0 or sample_s <= 0:
        raise ConfigurationError("warmup_s must be >= 0, window_s and sample_s > 0")
    if len(gpus) == 0:
        raise ConfigurationError("the node has no GPU to profile")
    _validate(caps_w, batches, gpus)
    caps = sorted({float(c) for c in caps_w}, reverse=True)
    batch_list = sorted({int(b) for b in batches})
    original_limits_w = gpus.get_power_limits_w()
    original_batch = engine.get_batch_limit()
    points: list[ProfilePoint] = []
    total = len(caps) * len(batch_list)
    try:
        for k, cap in enumerate(caps):
            gpus.set_power_limits_w([cap] * len(gpus))
            # Snake order: the batch does not jump from largest to smallest between caps.
            for batch in batch_list if k % 2 == 0 else batch_list[::-1]:
                engine.set_batch_limit(batch)
                _drain(engine, clock, batch, sample_s, drain_timeout_s)
                point = _measure_point(
                    gpus, engine, clock, cap, batch, warmup_s, window_s, sample_s
                )
                points.append(point)
                if progress is not None:
                    progress(len(points), total, point)
    finally:
        gpus.set_power_limits_w(original_limits_w)
        engine.set_batch_limit(original_batch)
    meta = replace(
        metadata,
        num_gpus=len(gpus),
        warmup_s=warmup_s,
        window_s=window_s,
        caps_w=tuple(sorted(caps)),
        batches=tuple(batch_list),
        created_utc=metadata.created_utc or datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return Profile(meta, tuple(points))


def _drain(
    engine: ServingEngine, clock: Clock, batch: int, sample_s: float, timeout_s: float
) -> None:
    """After a lower batch limit, wait for the sequences above it to finish (vLLM lets running
    sequences complete), so the warm-up starts from the new batch size."""
    waited_s = 0.0
    while engine.metrics().num_requests_running > batch and waited_s < timeout_s:
        clock.sleep(sample_s)
        waited_s += sample_s


def _measure_point(
    gpus: GPUGroup,
    engine: ServingEngine,
    clock: Clock,
    cap_w: float,
    batch: int,
    warmup_s: float,
    window_s: float,
    sample_s: float,
) -> ProfilePoint:
    clock.sleep(warmup_s)
    before = engine.metrics()
    energy_before_j = gpus.get_energy_j()
    t0 = clock.now_s()
    running_samples = [before.num_requests_running]
    elapsed_s = 0.0
    while elapsed_s < window_s - 1e-9:
        step_s = min(sample_s, window_s - elapsed_s)
        clock.sleep(step_s)
        elapsed_s += step_s
        running_samples.append(engine.metrics().num_requests_running)
    after = engine.metrics()
    energy_after_j = gpus.get_energy_j()
    duration_s = max(clock.now_s() - t0, 1e-9)
    per_gpu_w = tuple(
        (a - b) / duration_s for a, b in zip(energy_after_j, energy_before_j, strict=True)
    )
    itl = after.inter_token_latency_seconds.minus(before.inter_token_latency_seconds)
    ttft = after.time_to_first_token_seconds.minus(before.time_to_first_token_seconds)
    tokens = after.generation_tokens_total - before.generation_tokens_total
    mean_running = sum(running_samples) / len(running_samples)
    return ProfilePoint(
        cap_w=cap_w,
        batch=batch,
        throughput_tok_s=tokens / duration_s,
        power_w=sum(per_gpu_w),
        power_per_gpu_w=per_gpu_w,
        itl_p50_s=itl.quantile(0.5),
        itl_p99_s=itl.quantile(0.99),
        ttft_p99_s=ttft.quantile(0.99),
        mean_running=mean_running,
        saturated=after.num_requests_waiting > 0,
    )
