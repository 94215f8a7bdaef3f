"""The PALS controller: joint power-cap and batch-limit control for tokens per joule.

Each control period :func:`pals_decide` turns (state, observation, model, config) into (new state,
action) and nothing else: no clock, no device, so the same inputs always give the same outputs.
:class:`PalsController` only holds the state between calls, to satisfy the runtime's
:class:`~pals_core.control.policy.Policy` protocol.

The control law, per period:

1. **Measure** (:func:`_measure_period`, :func:`_failsafe_action`) over the period: throughput
   (generation counter), power per GPU (energy counters), the mean running batch (sampled every
   tick by :func:`pals_guard`).
2. **Estimate the target** (:func:`_choose_target`, :func:`.update_load_trim`): the operator's fixed
   target, else the observation's target, else the offered load from the engine's counters
   (:mod:`pals_core.control.demand`); never below the operator floor. An integral trim raises it
   while the queue grows and service falls short.
3. **Correct the model** online (:func:`_learn_corrections`): multiplicative factors on throughput
   and power, each the EWMA (in log space, bounded: anti-windup) of measured over predicted at the
   current operating point, learned only in steady state. They absorb a profile taken on another
   device, and drift. The **ITL loop** (:func:`.update_itl_trim`) adds a cap offset of either sign
   that seeks the QoS edge on the *measured* ITL p99: up at once on an excess (as far as the model
   says the cap moves the ITL), down slowly while windows sit under the setpoint, never back below
   a recent edge for a while.
4. **Plan** (:func:`.plan_step`, over :func:`~pals_core.model.planner.plan_operating_point`):
   the cap and batch limit of least power that serve the target with headroom within the budget
   and the ITL SLO; if none, the most throughput within the budget (``DEGRADED``, ``qos_risk``).
5. **Smooth** (:func:`.smoothed_cap_w`, :func:`.smoothed_batch`): deadbands on cap and batch, rate
   limits on planned cap decreases (budget cuts are never delayed) and, with nobody waiting, on
   planned rises (the ITL loop's push and a queue go through at once), so estimate and model noise
   do not make the knobs chatter.
6. **Distribute** (:func:`.distribute`) the caps over GPUs: in lockstep (tensor/expert parallel)
   the slowest GPU sets the pace, so a GPU that draws more power for the same work (learned from
   per-GPU power while no cap binds) gets a proportionally higher cap; the sum stays within the
   budget minus the margin.

Between periods, :func:`pals_guard` enforces the budget every tick: it cuts the caps at once when
their sum exceeds the (new) budget minus the margin, and again in proportion when measured power
exceeds the budget after the caps have had time to act (learning the overdraw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pals_core.control.demand import update_demand
from pals_core.control.pals_budget import (
    allowed_total_w,
    below_minima,
    distribute,
    fit_caps,
    interval_power,
    pals_guard,
    safe_default,
    valid,
)
from pals_core.control.pals_corrections import (
    cap_itl_elasticity,
    log_ewma,
    update_gpu_weights,
    update_itl_trim,
    update_load_trim,
)
from pals_core.control.pals_plan import cap_range_w, plan_step, smoothed_batch, smoothed_cap_w
from pals_core.control.pals_state import Mode, PalsConfig, PalsState, evolve
from pals_core.control.policy import Action, Observation
from pals_core.control.qos import QoSPolicy
from pals_core.errors import ConfigurationError
from pals_core.model.performance import PerformanceModel

__all__ = ["Mode", "PalsConfig", "PalsController", "PalsState", "pals_decide", "pals_guard"]


@dataclass(frozen=True, slots=True)
class _Period:
    """What was measured over the control period that just ended."""

    dt_s: float
    power_w: list[float] | None
    """Per-GPU power from the energy counters over the period (None: the first period)."""
    mean_running: float
    """The running batch, averaged over the period's ticks."""
    served_tok_s: float
    stale: bool
    """The engine's counters have not advanced for ``stale_after_s``."""
    limits_w: list[float]
    mean_cap_w: float


def _measure_period(
    state: PalsState, obs: Observation, cfg: PalsConfig
) -> tuple[PalsState, _Period]:
    """Step 1: throughput, power and running batch over the period; the demand estimate."""
    metrics = obs.metrics
    metrics_seen_s = state.metrics_seen_s
    if metrics.timestamp_s != state.metrics_time_s or math.isnan(metrics_seen_s):
        metrics_seen_s = obs.time_s
    energy = tuple(g.energy_j for g in obs.gpus)
    dt_s = obs.time_s - state.decide_time_s
    mean_running = (
        state.running_sum / state.running_n
        if state.running_n
        else float(metrics.num_requests_running)
    )
    prev_metrics = state.demand.last
    served_tok_s = math.nan
    if prev_metrics is not None and metrics.timestamp_s > prev_metrics.timestamp_s:
        served_tok_s = (metrics.generation_tokens_total - prev_metrics.generation_tokens_total) / (
            metrics.timestamp_s - prev_metrics.timestamp_s
        )
    limits = [g.power_limit_w for g in obs.gpus]
    period = _Period(
        dt_s=dt_s,
        power_w=interval_power(energy, state.decide_energy_j, dt_s),
        mean_running=mean_running,
        served_tok_s=served_tok_s,
        stale=obs.time_s - metrics_seen_s > cfg.stale_after_s,
        limits_w=limits,
        mean_cap_w=sum(limits) / len(limits),
    )
    state = evolve(
        state,
        demand=update_demand(state.demand, metrics, cfg.demand),
        decide_time_s=obs.time_s,
        decide_energy_j=energy,
        running_sum=0.0,
        running_n=0,
        metrics_time_s=metrics.timestamp_s,
        metrics_seen_s=metrics_seen_s,
    )
    return state, period


def _failsafe_action(
    state: PalsState, obs: Observation, cfg: PalsConfig, period: _Period
) -> tuple[PalsState, Action | None]:
    """Step 1b: hold the caps (within the budget) while measurements are missing, stale or
    recovering; the safe default in the first period. None: the measurements can be trusted."""
    allowed = allowed_total_w(obs, state, cfg)
    if period.power_w is None and valid(obs):  # the first period: nothing measured yet
        state = evolve(state, mode=Mode.WARMUP)
        return state, safe_default(obs, state, cfg)
    healthy = valid(obs) and not period.stale and period.power_w is not None
    if not healthy:
        state = evolve(state, mode=Mode.FAILSAFE, healthy_periods=0)
        caps = fit_caps(obs, period.limits_w, allowed)
        return state, Action(power_limits_w=caps, state=Mode.FAILSAFE.value, qos_risk=True)
    if state.mode == Mode.FAILSAFE:
        periods = state.healthy_periods + 1
        state = evolve(state, healthy_periods=periods)
        if periods < cfg.recover_periods:
            caps = fit_caps(obs, period.limits_w, allowed)
            return state, Action(power_limits_w=caps, state=Mode.FAILSAFE.value, qos_risk=True)
    return state, None


def _learn_corrections(
    state: PalsState,
    obs: Observation,
    model: PerformanceModel,
    cfg: PalsConfig,
    qos: QoSPolicy,
    period: _Period,
) -> tuple[PalsState, float]:
    """Step 3: the model's throughput/power factors (steady state only), the ITL loop's cap
    offset, the per-GPU power weights and the budget overdraw's relaxation. Returns the new
    state and the ITL loop's push this period (W per GPU, >= 0)."""
    assert period.power_w is not None
    dt_s, mean_cap, limits = period.dt_s, period.mean_cap_w, period.limits_w
    steady = obs.time_s - state.last_change_s >= cfg.steady_after_s
    total_power = sum(period.power_w)
    if steady and period.mean_running >= 1.0 and period.served_tok_s > 0:
        pred = model.predict(mean_cap, period.mean_running)
        ts = log_ewma(
            state.throughput_scale,
            period.served_tok_s / pred.throughput_tok_s,
            dt_s,
            cfg.correction_tau_s,
            cfg.throughput_scale_bounds,
        )
        ps = state.power_scale
        if total_power < 0.95 * sum(limits) and pred.power_w < 0.95 * sum(limits):
            ps = log_ewma(
                ps,
                total_power / pred.power_w,
                dt_s,
                cfg.correction_tau_s,
                cfg.power_scale_bounds,
            )
        state = evolve(state, throughput_scale=ts, power_scale=ps)
    offset_before_w = state.cap_offset_w
    elasticity = cap_itl_elasticity(model, mean_cap, period.mean_running, cfg.itl_trim_step_max_w)
    _, max_cap = cap_range_w(obs, allowed_total_w(obs, state, cfg))
    state = update_itl_trim(
        state,
        obs,
        cfg,
        qos.itl_p99_slo_s,
        elasticity,
        qos.ttft_p99_slo_s,
        cap_headroom_w=max_cap - mean_cap,
    )
    itl_push_w = max(0.0, state.cap_offset_w - offset_before_w)
    state = update_gpu_weights(state, period.power_w, limits, dt_s, cfg)
    allowed = allowed_total_w(obs, state, cfg)
    if obs.power_budget_w is not None and total_power < 0.9 * allowed:
        relaxed = min(1.0, state.budget_scale + cfg.budget_relax_per_s * dt_s)
        state = evolve(state, budget_scale=relaxed)
    return state, itl_push_w


def _choose_target(state: PalsState, obs: Observation, cfg: PalsConfig, dt_s: float) -> float:
    """Step 2: the throughput to plan for (NaN: the load is not measurable yet)."""
    if cfg.fixed_target_tok_s is not None:
        return cfg.fixed_target_tok_s
    if obs.throughput_target_tok_s is not None:
        return obs.throughput_target_tok_s
    demand = state.demand
    target = demand.estimate_tok_s(cfg.demand)
    age_s = obs.time_s - state.started_s
    few = demand.finished_seen < cfg.warmup_requests
    # The engine starts empty and the served rate climbs for about one request lifetime (15-20 s
    # at a high load): a plan on the climbing estimate is for half the load. The warm-up lasts
    # while the estimate still rises faster than ``warmup_rise_per_s``.
    ramping = math.isnan(state.target_tok_s) and not (
        target <= state.warmup_estimate_tok_s * (1.0 + cfg.warmup_rise_per_s * dt_s)
    )
    if age_s < cfg.warmup_s or ((few or ramping) and age_s < cfg.warmup_max_s):
        return math.nan  # the averages have not seen enough of the load yet
    if math.isfinite(state.target_tok_s):
        # A cap cut slows the running requests before Little's law refills the batch, so the
        # served rate dips by itself: let the estimate fall only slowly, or the controller
        # would chase its own dip down.
        target = max(target, state.target_tok_s * (1.0 - cfg.target_fall_per_s * dt_s))
        if obs.metrics.num_requests_waiting == 0:
            # With nobody waiting, a rise in the served rate is mostly the running batch
            # draining faster after a cap rise, not new demand: followed at once, the
            # target chases its own surge (a 400 <-> 700 W limit cycle at high load). A
            # queue lifts the limit at once.
            rise = state.target_tok_s * (1.0 + cfg.target_rise_per_s * dt_s)
            target = min(target, rise)
    return target


def pals_decide(
    state: PalsState,
    obs: Observation,
    model: PerformanceModel | None,
    cfg: PalsConfig,
    qos: QoSPolicy,
) -> tuple[PalsState, Action]:
    """One full decision (see the module doc for the control law: each step is a function)."""
    state, _ = pals_guard(state, obs, cfg)  # a decision tick is also a tick
    if math.isnan(state.started_s):
        state = evolve(state, started_s=obs.time_s)
    if model is None:
        state = evolve(state, mode=Mode.SAFE_DEFAULT, running_sum=0.0, running_n=0)
        return state, safe_default(obs, state, cfg)
    if model.num_gpus != len(obs.gpus):
        raise ConfigurationError(
            f"the model describes {model.num_gpus} GPUs, the observation has {len(obs.gpus)}"
        )
    state, period = _measure_period(state, obs, cfg)
    state, held = _failsafe_action(state, obs, cfg, period)
    if held is not None:
        return state, held
    state, itl_push_w = _learn_corrections(state, obs, model, cfg, qos, period)
    target = _choose_target(state, obs, cfg, period.dt_s)
    state = evolve(state, warmup_estimate_tok_s=state.demand.estimate_tok_s(cfg.demand))
    if math.isnan(target):
        state = evolve(state, mode=Mode.WARMUP, healthy_periods=0)
        return state, safe_default(obs, state, cfg)
    target = max(target, cfg.target_floor_tok_s)
    if math.isnan(state.target_tok_s):
        # The first plan: the ITL loop has only seen the safe default's full clock, whose
        # comfortable windows say nothing about the plan's margins (no probing from the start).
        state = evolve(state, cap_trim_w=max(0.0, state.cap_trim_w))
    state = update_load_trim(state, obs, cfg, target, period.served_tok_s, period.dt_s)
    allowed = allowed_total_w(obs, state, cfg)
    if below_minima(obs, allowed):
        state = evolve(state, mode=Mode.DEGRADED, target_tok_s=target)
        caps = tuple(g.min_limit_w for g in obs.gpus)
        return state, Action(caps, cfg.default_batch, state=Mode.DEGRADED.value, qos_risk=True)
    plan = plan_step(state, obs, model, cfg, qos, target, period.mean_cap_w)
    feasible = plan.feasible and plan.predicted_capacity_tok_s >= target
    mode = Mode.TRACKING if feasible else Mode.DEGRADED
    state, cap = smoothed_cap_w(state, obs, cfg, plan, feasible, period.mean_cap_w, itl_push_w)
    # The SLO cannot be met within the budget: serve the load (vLLM's default batch, so no
    # queue builds behind a small limit); the ITL is lost either way, the TTFT need not be.
    batch = smoothed_batch(obs, cfg, plan.batch_limit) if feasible else cfg.default_batch
    caps = distribute(obs, cap, state.gpu_weights, allowed)
    changed = batch != obs.batch_limit or any(
        abs(a - b) >= 0.5 for a, b in zip(caps, period.limits_w, strict=True)
    )
    state = evolve(
        state,
        mode=mode,
        target_tok_s=target,
        last_change_s=obs.time_s if changed else state.last_change_s,
    )
    return state, Action(caps, batch, state=mode.value, qos_risk=not feasible)


class PalsController:
    """The PALS policy: holds the state between calls; every decision is :func:`pals_decide`."""

    name = "pals"

    def __init__(
        self,
        model: PerformanceModel | None,
        config: PalsConfig | None = None,
        *,
        num_gpus: int,
        qos: QoSPolicy,
    ) -> None:
        if num_gpus < 1:
            raise ConfigurationError(f"num_gpus must be >= 1, got {num_gpus}")
        if model is not None and model.num_gpus != num_gpus:
            raise ConfigurationError(
                f"the model was profiled on {model.num_gpus} GPUs, the node has {num_gpus}"
            )
        self.model = model
        self.config = config or PalsConfig()
        self.num_gpus = num_gpus
        self.qos = qos
        self.state = PalsState(mode=Mode.SAFE_DEFAULT if model is None else Mode.WARMUP)

    def decide(self, obs: Observation) -> Action:
        self.state, action = pals_decide(self.state, obs, self.model, self.config, self.qos)
        return action

    def guard(self, obs: Observation) -> Action | None:
        self.state, action = pals_guard(self.state, obs, self.config)
        return action
