"""The runtime loop: the only part of the control stack that touches devices and time.

``sample -> decide -> adjust``: every tick it reads the GPUs and the engine, asks the policy
(``guard`` between periods, ``decide`` at each period boundary), clamps what it gets to each
GPU's constraints, writes only what changed, records a :class:`Sample`, then sleeps on the
injected clock (with the simulator's clock, sleeping advances the simulation).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from pals_core.clock import Clock
from pals_core.control.policy import Action, GPUReading, Observation, Policy
from pals_core.device.gpu import GPUGroup
from pals_core.engine.base import MAX_BATCH_LIMIT, EngineMetrics, ServingEngine
from pals_core.errors import ConfigurationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopConfig:
    period_s: float = 0.5
    tick_s: float = 0.1

    def __post_init__(self) -> None:
        if not (self.tick_s > 0 and self.period_s > 0):
            raise ConfigurationError("period_s and tick_s must be positive")
        ratio = self.period_s / self.tick_s
        if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise ConfigurationError(
                f"period_s ({self.period_s}) must be a whole multiple of tick_s ({self.tick_s})"
            )

    @property
    def ticks_per_period(self) -> int:
        return round(self.period_s / self.tick_s)


@dataclass(frozen=True, slots=True)
class Sample:
    """One tick as it happened, for metrics and plots."""

    time_s: float
    power_w: float
    """Total GPU power measured at this tick."""
    energy_j: float
    """Total GPU energy counter (cumulative)."""
    power_budget_w: float | None
    throughput_target_tok_s: float | None
    generation_tokens_total: int
    power_limits_w: tuple[float, ...]
    batch_limit: int
    state: str
    qos_risk: bool
    decided: bool
    """True when this tick was a full decision (period boundary)."""


def observe(
    time_s: float,
    gpus: GPUGroup,
    engine: ServingEngine,
    budget_w: float | None,
    target_tok_s: float | None,
) -> Observation:
    readings = []
    for gpu in gpus:
        limits = gpu.power_limit_constraints()
        readings.append(
            GPUReading(
                power_w=gpu.get_power_w(),
                energy_j=gpu.get_energy_j(),
                power_limit_w=gpu.get_power_limit_w(),
                min_limit_w=limits.min_w,
                max_limit_w=limits.max_w,
            )
        )
    metrics: EngineMetrics = engine.metrics()
    return Observation(
        time_s=time_s,
        power_budget_w=budget_w,
        throughput_target_tok_s=target_tok_s,
        gpus=tuple(readings),
        metrics=metrics,
        batch_limit=engine.get_batch_limit(),
    )


def apply_action(action: Action, gpus: GPUGroup, engine: ServingEngine) -> None:
    """Apply ``action``, clamped to each GPU's constraints; unchanged values are not written."""
    if action.power_limits_w is not None:
        if len(action.power_limits_w) != len(gpus):
            raise ConfigurationError(
                f"policy returned {len(action.power_limits_w)} power limits for {len(gpus)} GPUs"
            )
        for position, (gpu, wanted_w) in enumerate(zip(gpus, action.power_limits_w, strict=True)):
            if not math.isfinite(wanted_w):
                raise ConfigurationError(f"policy returned a non-finite power limit: {wanted_w}")
            limit_w = gpu.power_limit_constraints().clamp(wanted_w)
            if abs(limit_w - gpu.get_power_limit_w()) >= 0.5:
                gpus.set_power_limit_w(position, limit_w)
    # An engine without a batch knob (vLLM without the PALS plugin) keeps its limit: cap-only.
    if action.batch_limit is not None and engine.batch_limit_unavailable_reason() is None:
        batch = max(1, min(MAX_BATCH_LIMIT, int(action.batch_limit)))
        if batch != engine.get_batch_limit():
            engine.set_batch_limit(batch)


def checked_budget_w(budget_w: float | None, elapsed_s: float) -> float | None:
    """The budget as the policies see it: ``None`` and ``+inf`` mean no limit; NaN, zero and
    negative budgets are refused (a :class:`ConfigurationError` naming the time)."""
    if budget_w is None or budget_w == math.inf:
        return None
    if not (math.isfinite(budget_w) and budget_w > 0):
        raise ConfigurationError(
            f"power budget at t={elapsed_s:g} s must be > 0 W, +inf or None (no limit); "
            f"got {budget_w!r}"
        )
    return float(budget_w)


def run_control_loop(
    policy: Policy,
    gpus: GPUGroup,
    engine: ServingEngine,
    clock: Clock,
    *,
    duration_s: float,
    budget_w: Callable[[float], float | None] = lambda _t: None,
    target_tok_s: Callable[[float], float | None] = lambda _t: None,
    config: LoopConfig | None = None,
    on_sample: Callable[[Sample], None] | None = None,
) -> None:
    """Run ``policy`` for ``duration_s`` seconds of ``clock`` time.

    ``budget_w(t)`` and ``target_tok_s(t)`` give the node's GPU power budget and throughput target
    at time ``t`` seconds since the loop started (None: unconstrained / follow demand). A budget of
    ``+inf`` means no limit, like None; NaN, zero or a negative budget raises
    :class:`ConfigurationError` (:func:`checked_budget_w`).
    """
    cfg = config or LoopConfig()
    no_batch_knob = engine.batch_limit_unavailable_reason()
    if no_batch_knob is not None:
        logger.warning("running cap-only (batch decisions are not applied): %s", no_batch_knob)
    start_s = clock.now_s()
    tick = 0
    state, qos_risk = "", False
    n_ticks = math.ceil(duration_s / cfg.tick_s - 1e-9)
    while tick < n_ticks:
        elapsed_s = tick * cfg.tick_s  # the schedule's time; sleeping to deadlines avoids drift
        budget = checked_budget_w(budget_w(elapsed_s), elapsed_s)
        target = target_tok_s(elapsed_s)
        obs = observe(elapsed_s, gpus, engine, budget, target)
        decided = tick % cfg.ticks_per_period == 0
        action = policy.decide(obs) if decided else policy.guard(obs)
        if action is not None:
            apply_action(action, gpus, engine)
            state, qos_risk = action.state or state, action.qos_risk
        if on_sample is not None:
            on_sample(
                Sample(
                    time_s=elapsed_s,
                    power_w=obs.total_power_w,
                    energy_j=sum(g.energy_j for g in obs.gpus),
                    power_budget_w=budget,
                    throughput_target_tok_s=target,
                    generation_tokens_total=obs.metrics.generation_tokens_total,
                    power_limits_w=tuple(gpus.get_power_limits_w()),
                    batch_limit=engine.get_batch_limit(),
                    state=state,
                    qos_risk=qos_risk,
                    decided=decided,
                )
            )
        tick += 1
        clock.sleep(max(0.0, start_s + tick * cfg.tick_s - clock.now_s()))
