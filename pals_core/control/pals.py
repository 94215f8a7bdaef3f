"""The PALS controller: joint power-cap and batch-limit control for tokens per joule.

Each control period :func:`pals_decide` turns (state, observation, model, config) into (new state,
action) and nothing else: no clock, no device, so the same inputs always give the same outputs.
:class:`PalsController` only holds the state between calls, to satisfy the runtime's
:class:`~pals_core.control.policy.Policy` protocol.

The control law, per period:

1. **Measure** over the period: throughput (generation counter), power per GPU (energy counters),
   the mean running batch (sampled every tick by :func:`pals_guard`).
2. **Estimate the target**: the operator's fixed target, else the observation's target, else the
   offered load from the engine's counters (:mod:`pals_core.control.demand`); never below the
   operator floor. An integral trim raises it while the queue grows and service falls short.
3. **Correct the model** online: multiplicative factors on throughput and power, each the EWMA
   (in log space, bounded: anti-windup) of measured over predicted at the current operating
   point, learned only in steady state. They absorb a profile taken on another device, and drift.
   The **ITL loop** (:func:`_update_itl_trim`) adds a cap offset of either sign that seeks the
   QoS edge on the *measured* ITL p99: up at once on an excess (as far as the model says the cap
   moves the ITL), down slowly while windows sit under the setpoint, never back below a recent
   edge for a while.
4. **Plan** (:func:`~pals_core.model.planner.plan_operating_point`): the cap and batch limit of
   least power that serve the target with headroom within the budget and the ITL SLO; if none,
   the most throughput within the budget (``DEGRADED``, ``qos_risk``).
5. **Smooth**: deadbands on cap and batch, rate limits on planned cap decreases (budget cuts are
   never delayed) and, with nobody waiting, on planned rises (the ITL loop's push and a queue go
   through at once), so estimate and model noise do not make the knobs chatter.
6. **Distribute** the caps over GPUs: in lockstep (tensor/expert parallel) the slowest GPU sets
   the pace, so a GPU that draws more power for the same work (learned from per-GPU power while no
   cap binds) gets a proportionally higher cap; the sum stays within budget - margin.

Between periods, :func:`pals_guard` enforces the budget every tick: it cuts the caps at once when
their sum exceeds the (new) budget minus the margin, and again in proportion when measured power
exceeds the budget after the caps have had time to act (learning the overdraw).
"""

from __future__ import annotations

import math
from dataclasses import replace

from pals_core.control.demand import update_demand
from pals_core.control.pals_state import Mode, PalsConfig, PalsState
from pals_core.control.policy import Action, Observation
from pals_core.control.qos import QoSPolicy
from pals_core.errors import ConfigurationError
from pals_core.model.performance import PerformanceModel
from pals_core.model.planner import PlanRequest, plan_operating_point

__all__ = ["Mode", "PalsConfig", "PalsController", "PalsState", "pals_decide", "pals_guard"]


def _clamp(x: float, bounds: tuple[float, float]) -> float:
    return min(bounds[1], max(bounds[0], x))


def _log_ewma(
    old: float, ratio: float, dt_s: float, tau_s: float, bounds: tuple[float, float]
) -> float:
    """Move ``old`` towards ``ratio`` in log space, bounded (the bound is the anti-windup)."""
    if not (ratio > 0 and math.isfinite(ratio)):
        return old
    alpha = 1.0 - math.exp(-dt_s / tau_s)
    return _clamp(math.exp(math.log(old) + alpha * (math.log(ratio) - math.log(old))), bounds)


def _valid(obs: Observation) -> bool:
    return len(obs.gpus) > 0 and all(
        math.isfinite(g.power_w) and g.power_w >= 0 and math.isfinite(g.energy_j) for g in obs.gpus
    )


def _allowed_total_w(obs: Observation, state: PalsState, cfg: PalsConfig) -> float:
    """The most the caps may sum to (inf when unconstrained)."""
    budget = obs.power_budget_w
    if budget is None:
        return math.inf
    return max(0.0, (budget - cfg.budget_margin(budget)) * state.budget_scale)


def _fit_caps(obs: Observation, caps: list[float], allowed_total_w: float) -> tuple[float, ...]:
    """Clamp each cap to its GPU's range, then scale the excess over the minima down to the
    allowed total (never below a GPU's minimum: a budget under the minima gets the minima)."""
    lo = [g.min_limit_w for g in obs.gpus]
    hi = [g.max_limit_w for g in obs.gpus]
    caps = [min(h, max(m, c)) for c, m, h in zip(caps, lo, hi, strict=True)]
    total = sum(caps)
    if total > allowed_total_w:
        floor = sum(lo)
        if allowed_total_w <= floor:
            return tuple(lo)
        share = (allowed_total_w - floor) / (total - floor)
        caps = [m + (c - m) * share for c, m in zip(caps, lo, strict=True)]
    return tuple(caps)


def _distribute(
    obs: Observation, mean_cap_w: float, weights: tuple[float, ...], allowed_total_w: float
) -> tuple[float, ...]:
    n = len(obs.gpus)
    w = weights if len(weights) == n else (1.0,) * n
    return _fit_caps(obs, [mean_cap_w * wi for wi in w], allowed_total_w)


def _safe_default(obs: Observation, state: PalsState, cfg: PalsConfig) -> Action:
    caps = [g.max_limit_w for g in obs.gpus]
    return Action(
        power_limits_w=_fit_caps(obs, caps, _allowed_total_w(obs, state, cfg)),
        batch_limit=cfg.default_batch,
        state=state.mode.value,
        qos_risk=False,
    )


def _interval_power(
    energy_j: tuple[float, ...], prev: tuple[float, ...], dt_s: float
) -> list[float] | None:
    if len(prev) != len(energy_j) or not dt_s > 0:
        return None
    return [(e - p) / dt_s for e, p in zip(energy_j, prev, strict=True)]


def pals_guard(
    state: PalsState, obs: Observation, cfg: PalsConfig
) -> tuple[PalsState, Action | None]:
    """The per-tick budget check. Records the running batch for the next decision."""
    energy = tuple(g.energy_j for g in obs.gpus)
    interval = _interval_power(energy, state.tick_energy_j, obs.time_s - state.tick_time_s)
    new = replace(
        state,
        tick_time_s=obs.time_s,
        tick_energy_j=energy,
        running_sum=state.running_sum + obs.metrics.num_requests_running,
        running_n=state.running_n + 1,
    )
    budget = obs.power_budget_w
    if budget is None or not obs.gpus:
        return new, None
    allowed = _allowed_total_w(obs, new, cfg)
    limits = [g.power_limit_w for g in obs.gpus]
    if sum(limits) > allowed + 0.5:  # the budget fell below the caps: cut now
        caps = _fit_caps(obs, limits, allowed)
        new = replace(new, last_cut_s=obs.time_s, last_change_s=obs.time_s)
        return new, Action(power_limits_w=caps, state=new.mode.value, qos_risk=False)
    if not _valid(obs):
        return new, None
    measured = sum(interval) if interval is not None else obs.total_power_w
    if measured > budget and obs.time_s - state.last_cut_s >= cfg.settle_s:
        # The caps have acted and power is still over: the devices overdraw their caps.
        factor = (allowed / measured) if measured > 0 else 1.0
        scale = _clamp(new.budget_scale * factor, (0.7, 1.0))
        new = replace(
            new, budget_scale=scale, mode=Mode.FAILSAFE, healthy_periods=0,
            last_cut_s=obs.time_s, last_change_s=obs.time_s,
        )  # fmt: skip
        caps = _fit_caps(obs, [c * factor for c in limits], _allowed_total_w(obs, new, cfg))
        return new, Action(power_limits_w=caps, state=new.mode.value, qos_risk=True)
    return new, None


def pals_decide(
    state: PalsState,
    obs: Observation,
    model: PerformanceModel | None,
    cfg: PalsConfig,
    qos: QoSPolicy,
) -> tuple[PalsState, Action]:
    """One full decision (see the module doc for the control law)."""
    state, _ = pals_guard(state, obs, cfg)  # a decision tick is also a tick
    if math.isnan(state.started_s):
        state = replace(state, started_s=obs.time_s)
    if model is None:
        state = replace(state, mode=Mode.SAFE_DEFAULT, running_sum=0.0, running_n=0)
        return state, _safe_default(obs, state, cfg)
    if model.num_gpus != len(obs.gpus):
        raise ConfigurationError(
            f"the model describes {model.num_gpus} GPUs, the observation has {len(obs.gpus)}"
        )

    # -- measurements over the period -------------------------------------------------------
    metrics = obs.metrics
    metrics_seen_s = state.metrics_seen_s
    if metrics.timestamp_s != state.metrics_time_s or math.isnan(metrics_seen_s):
        metrics_seen_s = obs.time_s
    stale = obs.time_s - metrics_seen_s > cfg.stale_after_s
    energy = tuple(g.energy_j for g in obs.gpus)
    dt_s = obs.time_s - state.decide_time_s
    period_power = _interval_power(energy, state.decide_energy_j, dt_s)
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
    demand = update_demand(state.demand, metrics, cfg.demand)
    state = replace(
        state, demand=demand, decide_time_s=obs.time_s, decide_energy_j=energy,
        running_sum=0.0, running_n=0, metrics_time_s=metrics.timestamp_s,
        metrics_seen_s=metrics_seen_s,
    )  # fmt: skip
    limits = [g.power_limit_w for g in obs.gpus]
    mean_cap = sum(limits) / len(limits)
    allowed = _allowed_total_w(obs, state, cfg)

    # -- failsafe: bad or stale measurements -------------------------------------------------
    if period_power is None and _valid(obs):  # the first period: nothing measured yet
        state = replace(state, mode=Mode.WARMUP)
        return state, _safe_default(obs, state, cfg)
    healthy = _valid(obs) and not stale and period_power is not None
    if not healthy:
        state = replace(state, mode=Mode.FAILSAFE, healthy_periods=0)
        caps = _fit_caps(obs, limits, allowed)
        return state, Action(power_limits_w=caps, state=Mode.FAILSAFE.value, qos_risk=True)
    assert period_power is not None
    if state.mode == Mode.FAILSAFE:
        periods = state.healthy_periods + 1
        state = replace(state, healthy_periods=periods)
        if periods < cfg.recover_periods:
            caps = _fit_caps(obs, limits, allowed)
            return state, Action(power_limits_w=caps, state=Mode.FAILSAFE.value, qos_risk=True)

    # -- online corrections (steady state only) ----------------------------------------------
    steady = obs.time_s - state.last_change_s >= cfg.steady_after_s
    total_power = sum(period_power)
    if steady and mean_running >= 1.0 and served_tok_s > 0:
        pred = model.predict(mean_cap, mean_running)
        ts = _log_ewma(
            state.throughput_scale, served_tok_s / pred.throughput_tok_s, dt_s,
            cfg.correction_tau_s, cfg.throughput_scale_bounds,
        )  # fmt: skip
        ps = state.power_scale
        if total_power < 0.95 * sum(limits) and pred.power_w < 0.95 * sum(limits):
            ps = _log_ewma(
                ps, total_power / pred.power_w, dt_s, cfg.correction_tau_s,
                cfg.power_scale_bounds,
            )  # fmt: skip
        state = replace(state, throughput_scale=ts, power_scale=ps)
    trim_before_w = state.cap_trim_w
    elasticity = _cap_itl_elasticity(model, mean_cap, mean_running, cfg.itl_trim_step_max_w)
    state = _update_itl_trim(state, obs, cfg, qos.itl_p99_slo_s, elasticity)
    itl_push_w = max(0.0, state.cap_trim_w - trim_before_w)
    state = _update_gpu_weights(state, period_power, limits, dt_s, cfg)
    if obs.power_budget_w is not None and total_power < 0.9 * allowed:
        relaxed = min(1.0, state.budget_scale + cfg.budget_relax_per_s * dt_s)
        state = replace(state, budget_scale=relaxed)
        allowed = _allowed_total_w(obs, state, cfg)

    # -- the target ----------------------------------------------------------------------------
    if cfg.fixed_target_tok_s is not None:
        target = cfg.fixed_target_tok_s
    elif obs.throughput_target_tok_s is not None:
        target = obs.throughput_target_tok_s
    else:
        target = demand.estimate_tok_s(cfg.demand)
        age_s = obs.time_s - state.started_s
        few = demand.finished_seen < cfg.warmup_requests and age_s < cfg.warmup_max_s
        if age_s < cfg.warmup_s or few:
            target = math.nan  # the averages have not seen enough of the load yet
        elif math.isfinite(state.target_tok_s):
            # A cap cut slows the running requests before Little's law refills the batch, so the
            # served rate dips by itself: let the estimate fall only slowly, or the controller
            # would chase its own dip down.
            target = max(target, state.target_tok_s * (1.0 - cfg.target_fall_per_s * dt_s))
            if metrics.num_requests_waiting == 0:
                # With nobody waiting, a rise in the served rate is mostly the running batch
                # draining faster after a cap rise, not new demand: followed at once, the
                # target chases its own surge (a 400 <-> 700 W limit cycle at high load). A
                # queue lifts the limit at once.
                rise = state.target_tok_s * (1.0 + cfg.target_rise_per_s * dt_s)
                target = min(target, rise)
    if math.isnan(target):
        state = replace(state, mode=Mode.WARMUP, healthy_periods=0)
        return state, _safe_default(obs, state, cfg)
    target = max(target, cfg.target_floor_tok_s)
    state = _update_trim(state, obs, cfg, target, served_tok_s, dt_s)

    # -- plan ------------------------------------------------------------------------------------
    n = len(obs.gpus)
    min_total = sum(g.min_limit_w for g in obs.gpus)
    if allowed <= min_total:  # the budget cannot even carry the minimum caps
        state = replace(state, mode=Mode.DEGRADED, target_tok_s=target)
        caps = tuple(g.min_limit_w for g in obs.gpus)
        batch = _smooth_batch(obs.batch_limit, model.max_batch, cfg)
        return state, Action(caps, batch, state=Mode.DEGRADED.value, qos_risk=True)
    max_cap = min(sum(g.max_limit_w for g in obs.gpus) / n, allowed / n)
    min_cap = max(g.min_limit_w for g in obs.gpus)
    max_batch = cfg.max_batch or model.max_batch
    plan = plan_operating_point(
        model.table,
        PlanRequest(
            load_tok_s=target * state.load_trim,
            max_cap_w=max_cap,
            min_cap_w=min(min_cap, max_cap),
            itl_p99_slo_s=qos.itl_p99_slo_s * cfg.itl_slo_margin,
            headroom=cfg.headroom,
            max_batch=max_batch,
            min_batch=cfg.min_batch,
            throughput_scale=state.throughput_scale,
            power_scale=state.power_scale,
            itl_scale=1.0 / state.throughput_scale,
            current_cap_w=mean_cap if mean_cap <= max_cap else None,
            switch_margin=cfg.switch_margin,
            burst_margin=cfg.burst_margin,
            batch_headroom=cfg.batch_headroom,
        ),
    )
    feasible = plan.feasible and plan.predicted_capacity_tok_s >= target
    mode = Mode.TRACKING if feasible else Mode.DEGRADED

    # -- smoothing and distribution --------------------------------------------------------------
    # Anti-windup: the ITL offset never reaches past the caps that can be written; a negative
    # offset (the plan's margins were more than the measured ITL needs) only while tracking (a
    # degraded plan is already the most throughput the budget allows).
    floor_cap = min(min_cap, max_cap)
    if obs.time_s < state.itl_edge_until_s:
        # An ITL excess showed at itl_edge_cap_w not long ago: do not probe below it again
        # until the memory lapses (each probe of a known edge costs QoS windows).
        floor_cap = max(floor_cap, min(max_cap, state.itl_edge_cap_w + cfg.itl_edge_margin_w))
    trim = min(max(state.cap_trim_w, floor_cap - plan.cap_w), max_cap - plan.cap_w)
    if mode != Mode.TRACKING:
        trim = max(trim, 0.0)
    state = replace(state, cap_trim_w=trim)
    cap = min(max_cap, plan.cap_w + trim)
    if abs(cap - mean_cap) < cfg.cap_deadband_w and mean_cap <= max_cap + 1e-9:
        cap = mean_cap
    elif cap < mean_cap - cfg.cap_step_down_w and mean_cap <= max_cap + 1e-9:
        cap = mean_cap - cfg.cap_step_down_w
    elif metrics.num_requests_waiting == 0 and mode == Mode.TRACKING:
        # Nobody waits: a higher plan is the demand estimate's noise more often than new
        # demand, and near the top of the capacity curve a few % of estimate are 100+ W. The
        # plan's rises are slewed; the ITL loop's push goes through at once, and so does any
        # rise while requests wait.
        cap = min(cap, mean_cap + cfg.cap_step_up_w + itl_push_w)
    cap = min(cap, max_cap)
    batch = plan.batch_limit
    # Asymmetric deadband: more capacity is taken at once, a smaller limit only when it is much
    # smaller (a larger limit costs nothing while the running batch follows the load).
    grow = batch > obs.batch_limit * (1.0 + cfg.batch_deadband_frac)
    shrink = batch < obs.batch_limit * (1.0 - cfg.batch_shrink_frac)
    if not (grow or shrink):
        batch = obs.batch_limit
    caps = _distribute(obs, cap, state.gpu_weights, allowed)
    changed = batch != obs.batch_limit or any(
        abs(a - b) >= 0.5 for a, b in zip(caps, limits, strict=True)
    )
    state = replace(
        state, mode=mode, target_tok_s=target, healthy_periods=state.healthy_periods,
        last_change_s=obs.time_s if changed else state.last_change_s,
    )  # fmt: skip
    return state, Action(caps, batch, state=mode.value, qos_risk=not feasible)


def _smooth_batch(current: int, largest: int, cfg: PalsConfig) -> int:
    return max(cfg.min_batch, min(current, largest))


def _update_trim(
    state: PalsState, obs: Observation, cfg: PalsConfig, target: float, served: float, dt_s: float
) -> PalsState:
    """Integral action on the throughput error: grows while the queue builds and service falls
    short of the target; decays otherwise. Frozen in DEGRADED (capacity is already maximal)."""
    if not (dt_s > 0 and target > 0 and math.isfinite(served)):
        return state
    trim = state.load_trim
    waiting = obs.metrics.num_requests_waiting > 0
    if waiting and served < 0.97 * target and state.mode != Mode.DEGRADED:
        trim += cfg.trim_ki_per_s * dt_s * (1.0 - served / target)
    elif not waiting:
        trim -= cfg.trim_decay_per_s * dt_s
    return replace(state, load_trim=_clamp(trim, (1.0, 1.0 + cfg.trim_max)))


def _cap_itl_elasticity(
    model: PerformanceModel, cap_w: float, running: float, step_w: float
) -> float:
    """How much the model says one cap step buys in ITL: the relative fall of the predicted ITL
    p99 over the relative rise of the cap, at the current cap and running batch. Dense decode
    at a low clock is elastic (0.3-0.5); an MoE node whose step is dominated by expert
    dispatch is not (< 0.1 above its lowest caps), and there a higher cap only burns power."""
    n = max(running, 1.0)
    base = model.predict(cap_w, n).itl_p99_s
    if not (base > 0 and cap_w > 0):
        return 0.0
    up = model.predict(cap_w + step_w, n).itl_p99_s
    return (1.0 - up / base) / (step_w / cap_w)


def _update_itl_trim(
    state: PalsState,
    obs: Observation,
    cfg: PalsConfig,
    slo_s: float,
    cap_itl_elasticity: float = 1.0,
) -> PalsState:
    """The ITL feedback: a cap offset (W per GPU, either sign) that seeks the QoS edge.

    The model's plan is the feed-forward; this loop moves the cap towards the lowest one at which
    the *measured* ITL p99 still sits at ``itl_setpoint`` x SLO, the way the best fixed
    configuration sits just inside the SLO (the plan's margins are for a model it cannot trust
    to a few %).

    The running window's ITL histogram delta (since ``itl_ref``) is read *every period*, so the
    offset reacts before a window is lost: as soon as the window holds ``itl_min_samples``
    tokens and its p99 is above ``itl_trim_early`` x SLO (``itl_trim_high`` once the window is
    complete), the offset grows in proportion to the excess, at most ``itl_trim_step_max_w`` per
    step (one outlier prefill must not double the cap; repeated excess keeps pushing), scaled
    down where the model says the cap hardly moves the ITL (``cap_itl_elasticity`` under
    ``itl_full_push_elasticity``: an MoE node's excursions come from its batch, not its clock),
    and a new window begins. A faster clock shortens every step, and by Little's law the
    running batch.
    A completed window whose p99 is under the setpoint, with nobody waiting, lowers the offset
    by ``itl_trim_down_gain_w`` per unit of distance to the setpoint (at most
    ``itl_trim_down_max_w``): slowly, since a lower cap is only worth it if the SLO keeps holding,
    and not for ``itl_hold_s`` after an excess (the edge was found: probing it again at once
    would spend the QoS windows that the excess just warned about). Where the cap is a real
    lever, the excess also records the edge (``itl_edge_cap_w``): :func:`pals_decide` keeps the
    caps ``itl_edge_margin_w`` above it for ``itl_edge_memory_s``.
    Between the setpoint and ``itl_trim_high`` the offset holds (a deadband against the 5-s p99's
    noise). Bounded (anti-windup): within ``itl_trim_bounds_w``, and :func:`pals_decide` keeps
    the planned cap plus the offset within the caps that can be written.
    A multiplicative ITL correction was tried first: p99 over a few seconds is too noisy (it
    swings by 2x at a fixed configuration in the simulator) to scale the whole surface by it.
    """
    hist = obs.metrics.inter_token_latency_seconds
    if state.itl_ref is None or hist.upper_bounds_s != state.itl_ref.upper_bounds_s:
        return replace(state, itl_ref=hist, itl_ref_time_s=obs.time_s)
    delta = hist.minus(state.itl_ref)
    elapsed = obs.time_s - state.itl_ref_time_s >= cfg.itl_window_s - 1e-9
    if delta.count < cfg.itl_min_samples:
        return replace(state, itl_ref=hist, itl_ref_time_s=obs.time_s) if elapsed else state
    ratio = delta.quantile(0.99) / slo_s
    trim = state.cap_trim_w
    at_max = all(g.power_limit_w >= g.max_limit_w - 1.0 for g in obs.gpus)
    high = cfg.itl_trim_high if elapsed else cfg.itl_trim_early
    hold_until_s = state.itl_hold_until_s
    if ratio > high:
        push = min(cfg.itl_trim_step_max_w, cfg.itl_trim_gain_w * (ratio - cfg.itl_trim_high))
        elastic = max(0.0, cap_itl_elasticity) / cfg.itl_full_push_elasticity
        push *= min(1.0, elastic)
        if not at_max and push >= 1.0:
            trim += push
            hold_until_s = obs.time_s + cfg.itl_hold_s
        probing = state.cap_trim_w <= -cfg.itl_edge_probe_w
        if probing and not at_max and elastic >= cfg.itl_edge_min_elastic:
            # The loop was probing below the plan and the cap is a real lever here: remember
            # where the edge was, the caps in force when the excess showed. (At or above the
            # plan an excess is a burst, not an edge; where the cap is no lever it says nothing
            # about the caps.)
            edge_w = sum(g.power_limit_w for g in obs.gpus) / len(obs.gpus)
            state = replace(
                state, itl_edge_cap_w=edge_w, itl_edge_until_s=obs.time_s + cfg.itl_edge_memory_s
            )
    elif not elapsed:
        return state  # the window is still running and fine so far
    elif (
        ratio < cfg.itl_setpoint
        and obs.metrics.num_requests_waiting == 0
        and obs.time_s >= hold_until_s
    ):
        step = cfg.itl_trim_down_gain_w * (cfg.itl_setpoint - ratio)
        trim -= min(cfg.itl_trim_down_max_w, step)
    lo, hi = cfg.itl_trim_bounds_w
    return replace(
        state, cap_trim_w=min(max(trim, lo), hi), itl_ref=hist, itl_ref_time_s=obs.time_s,
        itl_hold_until_s=hold_until_s,
    )  # fmt: skip


def _update_gpu_weights(
    state: PalsState, period_power: list[float], limits: list[float], dt_s: float, cfg: PalsConfig
) -> PalsState:
    """Per-GPU power shares, learned only while no cap binds (then differences are intrinsic)."""
    n = len(period_power)
    weights = state.gpu_weights if len(state.gpu_weights) == n else (1.0,) * n
    if n < 2 or any(p >= 0.92 * c for p, c in zip(period_power, limits, strict=True)):
        return replace(state, gpu_weights=weights)
    mean_p = sum(period_power) / n
    if mean_p <= 0:
        return replace(state, gpu_weights=weights)
    alpha = 1.0 - math.exp(-dt_s / cfg.gpu_weight_tau_s)
    new = [
        _clamp(w + alpha * (p / mean_p - w), cfg.gpu_weight_bounds)
        for w, p in zip(weights, period_power, strict=True)
    ]
    mean_w = sum(new) / n
    return replace(state, gpu_weights=tuple(w / mean_w for w in new))


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
